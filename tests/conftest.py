"""Shared fixtures: an injected clock, SQLite and PostgreSQL databases, and a running stack."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from bot.clock import FrozenClock
from bot.stack import Stack, running_stack, stack_settings

POSTGRES_URL = os.environ.get(
    "SANSHEN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 in Asia/Shanghai


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any connection that leaves the machine (WeCom is only ever the simulator)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and not (
            host.startswith("127.") or host.startswith("/")
        ):
            raise AssertionError(f"network access to {host} in a test")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def _postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def reset_postgres(url: str) -> None:
    """Empty the test database: every table, the migration record included."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.drop_all)
        await conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    await engine.dispose()


async def fresh_postgres() -> str:
    """The real PostgreSQL, emptied; skipped locally without it, a failure in CI."""
    if not _postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL must be reachable on 127.0.0.1:5432 in CI")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    await reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
async def postgres_url() -> str:
    return await fresh_postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """Each test using this runs on a fresh SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/sanshen.db"
        return
    yield await fresh_postgres()


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/sanshen.db"


@pytest.fixture
async def stack(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    async with running_stack(stack_settings(database_url), clock) as running:
        yield running


@pytest.fixture
async def sqlite_stack(sqlite_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    async with running_stack(stack_settings(sqlite_url), clock) as running:
        yield running
