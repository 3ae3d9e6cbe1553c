"""SQLite's write-ahead log copied into the database file by a thread of its own, not by a commit on the event loop.

In WAL mode SQLite appends each commit to the `-wal` file and, by default, the commit that
takes the log past 1,000 pages also copies the log into the database file and syncs it: a
checkpoint. The writers' connection runs on the event loop (storage.sqlite_inline), so such a
commit held every request for 13–40 ms, about every two hundred taps (bench.bench_callback).
Here a checkpoint is a PASSIVE one on a connection of its own, in a worker thread (SQLite
leaves the GIL while it copies and syncs): it never waits for the writer and the writer never
waits for it. The writers' own automatic checkpoint stays on as a backstop, at BACKSTOP_PAGES,
should this thread ever fall behind or stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from collections.abc import AsyncIterator
from typing import NamedTuple

log = logging.getLogger(__name__)

# The writers' automatic checkpoint when this one runs (SQLite's default is 1,000 pages, 4 MB).
BACKSTOP_PAGES = 10_000
# How often the thread looks; a look that finds nothing new costs microseconds.
EVERY_SECONDS = 1.0


class Checkpoint(NamedTuple):
    """What `PRAGMA wal_checkpoint` answered: busy (another checkpoint was running), frames in
    the log, frames now in the database file."""

    busy: bool
    logged: int
    copied: int


class WalCheckpointer:
    """PASSIVE checkpoints of one SQLite file, in a worker thread, every `every` seconds."""

    def __init__(self, database: str, *, every: float = EVERY_SECONDS) -> None:
        self._database = database
        self._every = every
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one checkpoint at a time, and none while closing

    def checkpoint(self) -> Checkpoint:
        """Copy what the log holds into the database file, as far as readers allow (blocking:
        call it from a worker thread)."""
        with self._lock:
            if self._connection is None:
                # check_same_thread off: each pass may run on another of the loop's workers.
                self._connection = sqlite3.connect(self._database, timeout=0, check_same_thread=False)
            busy, logged, copied = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return Checkpoint(bool(busy), logged, copied)

    async def run_forever(self) -> None:
        """Check point every `every` seconds until cancelled; a failed pass is logged and the
        next one tries again (the writers' backstop keeps the log bounded meanwhile)."""
        while True:
            await asyncio.sleep(self._every)  # real time: how often this process looks
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error:
                log.exception(
                    "WAL checkpoint of %s failed; trying again in %s s", self._database, self._every
                )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The background passes, from entering until leaving."""
        task = asyncio.create_task(self.run_forever(), name="wal-checkpoints")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(self.close)

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.Error):
            if self._connection is not None:
                self._connection.close()
                self._connection = None
