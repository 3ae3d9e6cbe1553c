"""The writers' SQLite connection, run on the event loop: aiosqlite's interface without its thread.

aiosqlite runs every statement in a thread of its own and hands the result back to the event
loop. Each hand-over needs the GIL, which a busy event loop (decrypting and parsing the next
callbacks) gives up only every `sys.getswitchinterval()` (5 ms): under load each of a card
tap's thirty statements waited up to that long, all while its transaction held SQLite's one
write lock, and taps queued behind it for seconds. On a WAL file with synchronous=NORMAL a
statement of the bot's takes microseconds, less than the hand-over, so the writer runs them
where they are issued. What must not block the loop does not: waiting for another process's
write lock (SQLITE_BUSY) is an asyncio sleep and a retry (busy_timeout is 0 on this
connection), and the long reads (exports, verify-audit) go through `storage.db.reading()`,
which stays on aiosqlite.

SQLAlchemy's aiosqlite dialect drives this object through `async_creator`: it uses the parts
of aiosqlite.Connection and aiosqlite.Cursor below, nothing else.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

# Between tries for another process's write lock (the caller bounds the total wait).
_FIRST_RETRY_SECONDS = 0.001
_LONGEST_RETRY_SECONDS = 0.05


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
        "database is locked" in str(exc)
    )


async def _run(call: Callable[[], Any], wait: float) -> Any:
    """`call()`, retried after an asyncio sleep while another process holds the lock."""
    deadline: float | None = None
    delay = _FIRST_RETRY_SECONDS
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
            now = time.monotonic()
            deadline = deadline if deadline is not None else now + wait
            if now >= deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, _LONGEST_RETRY_SECONDS)


class InlineCursor:
    """aiosqlite.Cursor's coroutine methods over a sqlite3 cursor, run in place."""

    def __init__(self, cursor: sqlite3.Cursor, wait: float) -> None:
        self._cursor = cursor
        self._wait = wait

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        if parameters is None:
            await _run(lambda: self._cursor.execute(sql), self._wait)
        else:
            await _run(lambda: self._cursor.execute(sql, parameters), self._wait)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)  # a retry must see them all again
        await _run(lambda: self._cursor.executemany(sql, rows), self._wait)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _InPlace:
    """aiosqlite's work queue, as SQLAlchemy's isolation_level setter uses it: run at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineConnection:
    """aiosqlite.Connection's interface over a sqlite3 connection used on the loop's thread."""

    def __init__(self, connection: sqlite3.Connection, wait: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._wait = wait
        self._tx = _InPlace()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor(), self._wait)

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await _run(self._conn.commit, self._wait)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        """Close now (also what SQLAlchemy calls to terminate a connection it gives up on)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def inline_creator(database: str, *, wait: float) -> Callable[[], Any]:
    """An `async_creator` for create_async_engine: each call opens `database` (a file path);
    a statement waits at most `wait` seconds in all for another process's write lock."""

    async def connect() -> InlineConnection:
        # check_same_thread off: the pool may close a connection from the garbage collector.
        connection = sqlite3.connect(database, timeout=0, check_same_thread=False)
        return InlineConnection(connection, wait)

    return connect
