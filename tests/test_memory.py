"""Memory stays bounded: SQLite's page caches share one cap, and a sweep gives freed memory back."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import platform
from pathlib import Path

import pytest

from bot.cli.stack import Stack
from storage.db import SQLITE_CACHE_MB, make_engine, make_session_factory, reading, sqlite_heap_bytes

MiB = 2**20


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_page_caches_of_all_connections_share_one_cap(sqlite_url: str) -> None:
    """Three connections each read a database larger than the cap (a callback on the writers'
    connection, an export and verify-audit on readers' own): together they hold no more than
    the cap."""
    if sqlite_heap_bytes() is None:
        pytest.skip("sqlite3_memory_used is not reachable from this Python")
    rows = (SQLITE_CACHE_MB + 16) * 1000  # 1000-byte rows: about 1.5 times the cap
    engine = make_engine(sqlite_url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB)")
            await conn.exec_driver_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "INSERT INTO filler (body) SELECT randomblob(1000) FROM n",
                (rows,),
            )
        # the writers' one connection and two readers' (an export, verify-audit), all open
        reader = reading(make_session_factory(engine)).kw["bind"]
        held = [await engine.connect(), await reader.connect(), await reader.connect()]
        try:
            for conn in held:
                result = await conn.exec_driver_sql("SELECT count(*), sum(length(body)) FROM filler")
                assert result.one() == (rows, rows * 1000)
                await conn.commit()  # the read ends; the connection keeps its cached pages
            # Each alone may cache SQLITE_CACHE_MB; without the common cap these three held 3×.
            assert sqlite_heap_bytes() <= (SQLITE_CACHE_MB + 4) * MiB  # type: ignore[operator]
        finally:
            for conn in held:
                await conn.close()
    finally:
        await engine.dispose()


def _glibc() -> ctypes.CDLL:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.malloc.argtypes, libc.malloc.restype = [ctypes.c_size_t], ctypes.c_void_p
    libc.free.argtypes, libc.free.restype = [ctypes.c_void_p], None
    return libc


def _fragment(libc: ctypes.CDLL, total: int, block: int = 4096, keep_every: int = 16) -> list[int]:
    """Allocate and touch `total` bytes in small blocks, free all but every `keep_every`th: what
    a busy stretch leaves behind (the kept blocks stop glibc from shrinking the heap itself)."""
    blocks = []
    for _ in range(total // block):
        address = libc.malloc(block)
        ctypes.memset(address, 1, block)
        blocks.append(address)
    for index, address in enumerate(blocks):
        if index % keep_every:
            libc.free(address)
    return blocks[::keep_every]


async def test_a_sweep_gives_memory_freed_by_worker_threads_back(sqlite_stack: Stack) -> None:
    """Memory a worker thread (an aiosqlite connection, an export writer) freed counts in RSS
    until the next sweep hands it back to the OS."""
    libc = _glibc()
    freed = 64 * MiB * 15 // 16
    kept = await asyncio.to_thread(_fragment, libc, 64 * MiB)
    try:
        before = rss_bytes()
        await sqlite_stack.sweep()
        assert before - rss_bytes() >= freed // 2, "the freed pages are still resident after a sweep"
    finally:
        for address in kept:
            libc.free(address)
