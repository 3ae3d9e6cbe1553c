"""Database engine and session factory: SQLite (WAL, one queued writer connection) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import (
    at_commit,
    schema,  # noqa: F401  (registers every table)
)
from storage.checkpoints import BACKSTOP_PAGES, WalCheckpointer
from storage.migrate import upgrade
from storage.sqlite_inline import inline_creator

log = logging.getLogger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]


def _json_text(value: Any) -> str:
    """A JSON column's text, by orjson: a tap writes its cards' and messages' payloads, and
    json.dumps took several times as long (non-string keys become strings, as json.dumps does)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns in and out of every engine made here.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


# SQLite has one writer per file, and every transaction here but a read begins IMMEDIATE (it
# takes the write lock at once). With a pool of several connections, writers that find the lock
# taken wait in SQLite's busy handler, which sleeps (1, 2, 5 … up to 100 ms between tries) in
# the driver's threads: the lock sits free while they sleep, and under a burst of callbacks a
# tap waited seconds behind others that each needed milliseconds. So the engine keeps a single
# connection, run on the event loop itself (storage.sqlite_inline says why not in a thread):
# writers queue for it in the pool, first come first served, and the next one starts the moment
# the last one commits. Reads that take long (exports, verify-audit) use `reading()`, which has
# threaded connections of its own. Another process on the same file is waited for with asyncio
# sleeps, at most SQLITE_WAIT_SECONDS (the same bound as the wait for the pool's connection).
SQLITE_WAIT_SECONDS = 30


def make_engine(url: str, *, echo: bool = False, background_checkpoints: bool = False) -> AsyncEngine:
    """Create the async engine; for SQLite, create the folder, set WAL + BEGIN IMMEDIATE and
    keep one connection (writers queue for it). `background_checkpoints`: the caller runs
    `wal_checkpoints` for the file, so the writers check point only as a backstop."""
    parsed = make_url(url)
    database = _sqlite_file(parsed)
    if parsed.get_backend_name() == "sqlite" and database is None:  # in memory
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": SQLITE_WAIT_SECONDS}, **_JSON_CODEC
        )
        _configure_sqlite(engine, busy_ms=SQLITE_WAIT_SECONDS * 1000)
        return engine
    if database is not None:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=echo,
            async_creator=inline_creator(database, wait=SQLITE_WAIT_SECONDS),
            pool_size=1,
            max_overflow=0,
            pool_timeout=SQLITE_WAIT_SECONDS,
            **_JSON_CODEC,
        )
        _configure_sqlite(  # the connection waits for other processes itself
            engine, busy_ms=0, autocheckpoint=BACKSTOP_PAGES if background_checkpoints else None
        )
        return engine
    engine = create_async_engine(url, echo=echo, **_JSON_CODEC)
    _ping_when_idle(engine)
    return engine


# A PostgreSQL connection that sat in the pool this long is tried before it is used (the
# server may have restarted, or a firewall dropped the idle socket meanwhile); SQLAlchemy's
# pool_pre_ping tries every one, and on asyncpg that is three round trips (BEGIN, a query,
# ROLLBACK) a transaction: a tenth of what a group of taps sends (#13). One in steady use is
# not tried: if the server went away under it, the statement fails, SQLAlchemy drops every
# pooled connection made before then, and the callbacks are applied again on new ones (the
# dispatcher applies a failed group one callback at a time; WeCom re-sends what got no 200).
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["sanshen_idle_from"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _try_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_from = record.info.pop("sanshen_idle_from", None)
        if idle_from is None or time.monotonic() - idle_from < PING_AFTER_IDLE_SECONDS:
            return  # new, or in use moments ago
        try:
            dbapi_connection.ping()
        except Exception as exc:
            log.info(
                "a pooled database connection idle for %.0f s is gone (%s); opening another",
                time.monotonic() - idle_from,
                type(exc).__name__,
            )
            raise DisconnectionError() from exc  # the pool replaces it and checks out again


class DatabaseUnusable(Exception):
    """A database a read-only command must not touch: missing, empty, or at another schema
    version (the message is Chinese, for the person running the command)."""


async def open_existing(url: str) -> AsyncEngine:
    """An engine on a database that exists and is at the newest migration, for commands that
    only read (export, report, verify-audit, outbox): they never create or migrate one, so a
    mistyped path is an error rather than an empty database reported as "0 rows, intact"."""
    from storage.migrate import current, head

    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    database = _sqlite_file(parsed)
    if database is not None and not Path(database).is_file():  # noqa: ASYNC240 — one stat, at start
        raise DatabaseUnusable(f"数据库不存在：{database}（请检查 [database] url）")
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            revision = await conn.run_sync(current)
    except Exception as exc:  # an unknown database, refused login, nothing listening
        await engine.dispose()
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        raise DatabaseUnusable(f"数据库无法打开：{shown}（{reason}）") from None
    newest = head()
    if revision != newest:
        await engine.dispose()
        if revision is None:
            raise DatabaseUnusable(f"数据库中没有审校助手的数据：{shown}（请检查 [database] url）")
        raise DatabaseUnusable(
            f"数据库版本为 {revision}，本程序为 {newest}：请先启动服务（sanshen serve）完成升级，"
            "或使用与数据库相同版本的程序"
        )
    return engine


def _sqlite_file(url: str | URL) -> str | None:
    """The file a SQLite URL names; None for PostgreSQL or a SQLite database in memory."""
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return database


# SQLite keeps the pages a connection has read or written in its page cache. cache_size is per
# connection and the pool keeps five, so on its own it lets 5 × 32 MiB of pages pile up (an
# export reads the year through one connection, the next sweep through another), held while the
# bot sits idle. soft_heap_limit is SQLite's cap for the whole process: past it, connections
# recycle their cached pages instead of allocating more. One connection may still use it all.
SQLITE_CACHE_MB = 32


@contextlib.asynccontextmanager
async def wal_checkpoints(url: str) -> AsyncIterator[bool]:
    """Background checkpoints of a SQLite file while inside (storage.checkpoints); yields
    whether they run, the `background_checkpoints` of make_engine (no: PostgreSQL, memory)."""
    database = _sqlite_file(url)
    if database is None:
        yield False
        return
    async with WalCheckpointer(database).running():
        yield True


def _configure_sqlite(engine: AsyncEngine, *, busy_ms: int, autocheckpoint: int | None = None) -> None:
    # The driver's own implicit BEGIN is turned off and every transaction but a read starts
    # with BEGIN IMMEDIATE: a writer takes the lock at once instead of failing on lock upgrade
    # halfway through. `busy_ms`: how long SQLite itself waits for another process's lock
    # (0 for the writers' connection, which waits on the event loop instead).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Wait for other processes first: switching a new file to WAL takes a lock, and a
        # second instance starting at the same moment must queue for it, not fail.
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_MB * 1024}")  # KiB (default 2 MiB)
        cursor.execute(f"PRAGMA soft_heap_limit={SQLITE_CACHE_MB * 2**20}")  # bytes, whole process
        if autocheckpoint is not None:  # pages; storage.checkpoints does the usual ones
            cursor.execute(f"PRAGMA wal_autocheckpoint={autocheckpoint}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        deferred = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")


def _use_wal(cursor: Any) -> None:
    """WAL is a property of the file: set once, it stays. Switching needs an exclusive lock that
    SQLite's busy handler does not always wait for, so a second process starting at the same
    moment retries for a while (this runs in the driver's worker thread, not the event loop)."""
    delay = 0.01
    for attempt in range(60):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's adapted OperationalError
            if "locked" not in str(exc) or attempt == 59:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def sqlite_heap_bytes() -> int | None:
    """Bytes SQLite holds on its own heap in this process (page caches of every connection,
    schemas, statements): sqlite3_memory_used() of the library the sqlite3 module runs on.
    None when that library cannot be reached (a Python built with its own SQLite copy)."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
    except OSError:
        return None
    lib.sqlite3_libversion.restype = ctypes.c_char_p
    if lib.sqlite3_libversion().decode() != sqlite3.sqlite_version:
        return None  # another copy than the one our connections use
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return int(lib.sqlite3_memory_used())


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


# The execution option of sessions that only read. On SQLite every other transaction begins
# IMMEDIATE and so holds the file's one write lock until it ends; a long read holding it (an
# export streaming a year, verify-audit) would stall every callback behind it for seconds. A
# read begins DEFERRED instead: in WAL mode it reads a snapshot and writers never wait for it.
READ_ONLY = "sanshen_read_only"


def reading(db: SessionFactory) -> SessionFactory:
    """Sessions of `db`'s engine for work that only reads (it must not write: on SQLite a write
    in such a transaction would take the lock late and may fail as busy). On a SQLite file they
    open connections of their own, so a long read does not hold the writers' one connection."""
    engine: AsyncEngine = db.kw["bind"]
    return make_session_factory(_reader_of(engine).execution_options(**{READ_ONLY: True}))


_readers: weakref.WeakKeyDictionary[Any, AsyncEngine] = weakref.WeakKeyDictionary()


def _reader_of(engine: AsyncEngine) -> AsyncEngine:
    """The engine reads of a SQLite file go through: a connection per session (NullPool: the
    file is opened and closed again, nothing lingers once the writer engine is disposed)."""
    if _sqlite_file(engine.url) is None:
        return engine
    reader = _readers.get(engine.sync_engine)
    if reader is None:
        reader = create_async_engine(
            engine.url,
            echo=engine.echo,
            poolclass=NullPool,
            connect_args={"timeout": SQLITE_WAIT_SECONDS},
            **_JSON_CODEC,
        )
        _configure_sqlite(reader, busy_ms=SQLITE_WAIT_SECONDS * 1000)
        _readers[engine.sync_engine] = reader
    return reader


# Start-up takes this PostgreSQL advisory lock for its whole transaction: migrations and every
# row start-up writes (staff, audit head, roster, accounts), so instances start one at a time.
STARTUP_LOCK = 727001

Seed = Callable[[AsyncSession], Awaitable[None]]


async def init_models(engine: AsyncEngine, seed: Seed | None = None) -> None:
    """Bring the schema to the newest migration (idempotent; see storage.migrate), then run
    `seed` (start-up's own rows) in the same transaction.

    Several instances may start together: on PostgreSQL the transaction holds an advisory lock,
    on SQLite it begins IMMEDIATE (one writer per file), so one migrates and seeds while the
    others wait, then find the schema at head and the rows already there."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({STARTUP_LOCK})")
        await conn.run_sync(upgrade)
        if seed is not None:
            # The session joins the connection's transaction: engine.begin() commits it all.
            session = AsyncSession(bind=conn, expire_on_commit=False, autoflush=True)
            try:
                await seed(session)
                await session.run_sync(at_commit.finish)  # this session never commits itself
                await session.flush()
            finally:
                await session.close()
    log.info("database ready (%s)", engine.dialect.name)
