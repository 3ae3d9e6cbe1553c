"""Handing memory the process has freed back to the operating system (glibc's malloc_trim)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _glibc() -> Any | None:
    """The C library when it is glibc (malloc_trim is a glibc extension), else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl, macOS, Windows: nothing to call
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return libc


def release_free_memory() -> bool:
    """Give the free pages of every malloc arena back to the OS; False where that is not glibc.

    What Python, SQLite's page caches and the export writers free stays with the allocator:
    glibc keeps an arena per thread (every aiosqlite connection and executor thread has one)
    and on its own returns only the free top of a heap, so RSS would stay at its high-water
    mark while the bot sits idle. malloc_trim(0) returns every whole free page in every arena.
    """
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
