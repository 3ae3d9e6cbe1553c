"""Shared fixtures: an injected clock, SQLite and PostgreSQL databases, and a running stack."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock

# The server's existing database, used only to create and drop each test's own database.
ADMIN_URL = os.environ.get("SANSHEN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 in Asia/Shanghai


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse any connection that leaves the machine (WeCom is only ever the simulator)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in ("127.0.0.1", "::1", "localhost")
            and not (host.startswith("127.") or host.startswith("/"))
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


TEST_DB_PREFIX = "sanshen_t_"


async def _admin(sql: str) -> list[Any]:
    """One statement on the admin database, outside a transaction (CREATE/DROP DATABASE)."""
    engine = create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            result = await conn.exec_driver_sql(sql)
            return list(result.fetchall()) if result.returns_rows else []
    finally:
        await engine.dispose()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def drop_orphaned_test_databases() -> None:
    """Databases left by test runs on this machine that were killed before their teardown."""
    rows = await _admin(f"SELECT datname FROM pg_database WHERE datname LIKE '{TEST_DB_PREFIX}%'")
    for (name,) in rows:
        pid = name.removeprefix(TEST_DB_PREFIX).split("_")[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_orphans_dropped = False


@contextlib.asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """A new, uniquely named database on the real PostgreSQL, dropped afterwards (several runs may
    share the server); skipped locally without PostgreSQL, a failure in CI."""
    global _orphans_dropped
    if not _postgres_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL must be reachable on 127.0.0.1:5432 in CI")
        pytest.skip("PostgreSQL not reachable on 127.0.0.1:5432")
    if not _orphans_dropped:
        _orphans_dropped = True
        await drop_orphaned_test_databases()
    name = f"{TEST_DB_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    async with fresh_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """Each test using this runs on a fresh SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/sanshen.db"
        return
    async with fresh_postgres() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite+aiosqlite:///{tmp_path}/sanshen.db"


@pytest.fixture
async def fresh_stack(database_url: str) -> AsyncIterator[Stack]:
    """The 14×24-hour rule's accounts (tests/test_freshness.py FRESHNESS) on both databases, the
    clock at its START (a Monday, 10:00 in Shanghai)."""
    from tests.test_freshness import FRESHNESS, START

    settings = stack_settings(database_url, {"freshness": FRESHNESS})
    async with running_stack(settings, FrozenClock(START)) as stack:
        yield stack


@pytest.fixture
async def stack(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    async with running_stack(stack_settings(database_url), clock) as running:
        yield running


@pytest.fixture
async def sqlite_stack(sqlite_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    async with running_stack(stack_settings(sqlite_url), clock) as running:
        yield running


# ------------------------------------------------------ a real browser (tests/test_browser.py)

# WeCom's built-in browser, near enough: a phone-sized, touch, high-density screen in Chinese.
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}
BROWSER_TIMEOUT_MS = 10_000  # a page on loopback that takes longer than this is a failure


def _chromium_path() -> str | None:
    """The system chromium (Debian's `chromium`); playwright's own download is never used."""
    for cand in (
        os.environ.get("CHROMIUM_PATH"),
        "/usr/lib/chromium/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless chromium for one test (per test: each test has its own event loop); skipped
    locally without chromium, a failure in CI."""
    exe = _chromium_path()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium must be installed in CI (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=exe, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[Callable[[], Awaitable[BrowserContext]]]:
    """Opens fresh phone browsers (separate cookies each), all closed after the test."""
    opened: list[BrowserContext] = []

    async def open_phone() -> BrowserContext:
        context = await browser.new_context(**PHONE)  # type: ignore[arg-type]
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        opened.append(context)
        return context

    yield open_phone
    for context in opened:
        await context.close()
