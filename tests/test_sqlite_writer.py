"""SQLite's writer connection: run on the event loop, waiting for other processes without blocking it."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.checkpoints import WalCheckpointer
from storage.db import init_models, make_engine, make_session_factory, reading, wal_checkpoints
from storage.sqlite_inline import inline_creator


async def test_a_write_waits_for_another_processs_lock_while_the_loop_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await init_models(engine)
        db = make_session_factory(engine)
        async with db() as session, session.begin():
            await session.exec(text("CREATE TABLE note (body TEXT)"))  # type: ignore[call-overload]
        other = sqlite3.connect(path, isolation_level=None)  # another process's writer
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO note VALUES ('other')")

        async def write() -> None:
            async with db() as session, session.begin():
                await session.exec(text("INSERT INTO note VALUES ('ours')"))  # type: ignore[call-overload]

        turns = 0

        async def loop_turns() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(loop_turns())
        writer = asyncio.create_task(write())
        done, _ = await asyncio.wait({writer}, timeout=0.3)
        assert not done, "the write cannot go on while the other process holds the lock"
        assert turns > 100, "the event loop kept running while the write waited"
        other.execute("COMMIT")
        await asyncio.wait_for(writer, 5)
        ticker.cancel()
        async with reading(db)() as session:
            rows = (await session.exec(text("SELECT body FROM note ORDER BY rowid"))).all()  # type: ignore[call-overload]
        assert [r[0] for r in rows] == ["other", "ours"]
        other.close()
    finally:
        await engine.dispose()


async def test_a_lock_held_past_the_wait_fails_the_write_as_locked(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    sqlite3.connect(path).execute("PRAGMA journal_mode=WAL").close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    connection = await inline_creator(str(path), wait=0.05)()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await connection.execute("BEGIN IMMEDIATE")
        other.execute("COMMIT")
        await connection.execute("BEGIN IMMEDIATE")  # free again: it goes through
        await connection.commit()
    finally:
        await connection.close()
        other.close()


def rows_in_database_file(path: Path, folder: Path) -> int:
    """The notes a copy of the database file alone holds: what checkpoints have copied out of
    the write-ahead log so far (the copy has no `-wal` beside it)."""
    copy = folder / "copy.db"
    shutil.copyfile(path, copy)
    connection = sqlite3.connect(copy)
    try:
        return int(connection.execute("SELECT count(*) FROM note").fetchone()[0])
    finally:
        connection.close()
        copy.unlink()


@pytest.mark.parametrize("background", [True, False])
async def test_with_background_checkpoints_no_commit_copies_the_log_into_the_file(
    tmp_path: Path, background: bool
) -> None:
    """5 MB of commits, past the 4 MB at which a writer checkpoints by itself: with the background
    checkpointer (as `serve` runs) the commits leave that to it, and one pass of it copies them all."""
    path = tmp_path / "bot.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}", background_checkpoints=background)
    checkpointer = WalCheckpointer(str(path))
    try:
        await init_models(engine)
        db = make_session_factory(engine)
        async with db() as session, session.begin():
            await session.exec(text("CREATE TABLE note (body BLOB)"))  # type: ignore[call-overload]
        checkpointer.checkpoint()
        for _ in range(100):
            async with db() as session, session.begin():
                await session.exec(text("INSERT INTO note VALUES (randomblob(50000))"))  # type: ignore[call-overload]
        if not background:  # a writer that checks points by itself did so on the way
            assert rows_in_database_file(path, tmp_path) > 0
            return
        assert rows_in_database_file(path, tmp_path) == 0
        done = checkpointer.checkpoint()
        assert not done.busy and done.copied == done.logged > 1000
        assert rows_in_database_file(path, tmp_path) == 100
    finally:
        checkpointer.close()
        await engine.dispose()


async def test_background_checkpoints_run_for_a_sqlite_file_only(tmp_path: Path) -> None:
    async with wal_checkpoints(f"sqlite+aiosqlite:///{tmp_path}/bot.db") as background:
        assert background
    for url in ("sqlite+aiosqlite://", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"):
        async with wal_checkpoints(url) as background:
            assert not background
