"""Bridges an async row source to a synchronous writer running in a worker thread.

Exports read rows from the async database and hand them, in bounded batches, to the xlsx or
csv writers in a thread: the event loop keeps answering callbacks, and memory holds at most
a few batches whatever the number of rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")

_END = object()


async def consume_in_thread(
    batches: AsyncIterator[list[T]], consume: Callable[[Iterator[T]], R], *, depth: int = 4
) -> R:
    """Run `consume(rows)` in a thread while `batches` is read on the loop; return its result."""
    pipe: queue.Queue[object] = queue.Queue(maxsize=depth)
    finished = threading.Event()

    def rows() -> Iterator[T]:
        while True:
            item = pipe.get()
            if item is _END:
                return
            yield from cast(list[T], item)  # the pipe holds batches, then _END

    def run() -> R:
        try:
            return consume(rows())
        finally:
            finished.set()

    def put(item: object) -> bool:
        while not finished.is_set():
            try:
                pipe.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    loop = asyncio.get_running_loop()
    worker = loop.run_in_executor(None, run)
    try:
        async for batch in batches:
            if not await loop.run_in_executor(None, put, batch):
                break  # the writer stopped early (it raised); its error surfaces below
    except BaseException:
        await loop.run_in_executor(None, put, _END)
        with contextlib.suppress(Exception):
            await worker
        raise
    await loop.run_in_executor(None, put, _END)
    return await worker
