"""Pooled PostgreSQL connections: one that sat idle is tried before use and replaced when the
server dropped it; one in steady use is not tried (no round trips spent on it)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import db
from storage.db import make_engine


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(postgres_url: str, pid: int) -> None:
    """The server drops connection `pid` (as a restart or a dropped socket would)."""
    url = make_url(postgres_url).set(drivername="postgresql")
    import asyncpg  # (the driver's own connection: not one of the pool's)

    admin = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_connection_the_server_dropped_while_it_sat_idle_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(postgres_url)
    try:
        first = await _backend_pid(engine)  # (back in the pool now)
        await _terminate(postgres_url, first)
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has sat idle long enough
        second = await _backend_pid(engine)  # no error: tried, found gone, replaced
        assert second != first
    finally:
        await engine.dispose()


async def test_a_connection_in_steady_use_is_not_tried_and_a_failure_renews_the_pool(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    engine = make_engine(postgres_url)
    try:
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)
        # Used moments ago, so not tried first: the statement itself finds the server gone.
        with pytest.raises(DBAPIError) as failed:
            await _backend_pid(engine)
        assert failed.value.connection_invalidated
        assert await _backend_pid(engine) not in (first, 0)  # the next one is new, and works
    finally:
        await engine.dispose()
