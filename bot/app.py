"""The application factory: builds every resource in cleanup_ctx order and wires the routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession
from wechatpy.work.crypto import WeChatCrypto

from bot import views
from bot.core.clock import Clock, SystemClock
from bot.core.config import ConfigError, Settings
from bot.exports.runner import export_file
from bot.keys import (
    BACKGROUND,
    CLOCK,
    CRYPTO,
    DB,
    DISPATCHER,
    ENGINE,
    HTTP,
    SENDER,
    SETTINGS,
    SWEEPER,
    WECOM,
)
from bot.proofread import LexiconError
from bot.rules.calendar import local_day, uncovered_years
from bot.services.findings import lexicon_for, warm as warm_findings
from bot.web.setup import add_workspace
from bot.wecom.callback import CallbackEndpoint, add_callback_routes
from bot.wecom.client import WeComClient
from bot.wecom.dispatcher import Dispatcher
from bot.wecom.outbox import OutboxSender
from handlers import all_routers
from scheduler import all_sweeps
from scheduler.sweeper import Sweeper
from storage.accounts_repo import (
    AccountImportError,
    import_accounts_csv,
    read_accounts_csv,
    sync_accounts,
)
from storage.audit_repo import ensure_audit_head
from storage.db import init_models, make_engine, make_session_factory
from storage.duty_repo import RosterError, read_roster, upsert_shift
from storage.staff_repo import sync_staff

log = logging.getLogger(__name__)


async def on_health(request: web.Request) -> web.Response:
    """ok, or degraded with the reason while delivery waits for an admin (e.g. 可信IP)."""
    sender = request.app.get(SENDER)
    return web.json_response(sender.health_json() if sender is not None else {"status": "starting"})


def check_watch_files(settings: Settings) -> None:
    """Read the roster, accounts and 智能识错 list files once, so a bad file stops start-up naming its key."""
    readers = (
        ("duty.roster_file", settings.duty.roster_file, read_roster),
        ("freshness.accounts_file", settings.freshness.accounts_file, read_accounts_csv),
    )
    try:
        lexicon_for(settings)
    except LexiconError as exc:
        raise ConfigError(f"findings.lists_dir: {exc.message.removeprefix('配置错误：')}") from None
    for key, name, reader in readers:
        if not name:
            continue
        try:
            reader(Path(name), settings)
        except FileNotFoundError:
            raise ConfigError(f"{key}: 文件 {name} 不存在") from None
        except (RosterError, AccountImportError) as exc:
            raise ConfigError(f"{key}: {exc}") from None
        except Exception as exc:  # unreadable: not UTF-8, not an xlsx workbook, a folder, …
            raise ConfigError(f"{key}: 无法读取 {name}（{type(exc).__name__}）") from None


async def load_watch_data(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Configured accounts, and the roster and accounts files when configured."""
    await sync_accounts(session=session, settings=settings, at=now)
    if settings.freshness.accounts_file:
        count = await import_accounts_csv(
            session=session, settings=settings, path=Path(settings.freshness.accounts_file), at=now
        )
        log.info("imported %d accounts from %s", count, settings.freshness.accounts_file)
    if settings.duty.roster_file:
        shifts = read_roster(Path(settings.duty.roster_file), settings)
        for shift in shifts:
            await upsert_shift(session, shift)
        log.info("imported %d shifts from %s", len(shifts), settings.duty.roster_file)


async def seed_database(session: AsyncSession, settings: Settings, now: datetime) -> None:
    """Every row start-up writes. It runs inside init_models' transaction, after the migrations
    and under the same lock, so instances started together write these one after another."""
    await sync_staff(session=session, members=settings.staff)
    await ensure_audit_head(session=session)
    await load_watch_data(session, settings, now)
    missing = uncovered_years(settings.calendar, local_day(now, settings.tz))
    if missing:
        log.warning("no 法定节假日 data for %s: working days count Monday to Friday until [calendar] "
                    "lists them (or chinesecalendar is upgraded)", ", ".join(map(str, missing)))


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    run_sender: bool = True,
    run_scheduler: bool | None = None,
) -> web.Application:
    """Build the bot; nothing is opened until the app starts (cleanup_ctx).

    `run_scheduler` defaults to `run_sender`: tests drive both by hand on an injected clock.
    """
    app = web.Application(client_max_size=512 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[BACKGROUND] = set()
    app[CRYPTO] = WeChatCrypto(
        settings.wecom.token, settings.wecom.encoding_aes_key, settings.wecom.corp_id
    )

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[HTTP] = session
            yield

    async def db_ctx(app: web.Application) -> AsyncIterator[None]:
        engine = make_engine(settings.database.url, echo=settings.database.echo)
        try:
            await init_models(
                engine, seed=lambda session: seed_database(session, settings, app[CLOCK].now())
            )
        except BaseException:
            await engine.dispose()
            raise
        app[ENGINE] = engine
        app[DB] = make_session_factory(engine)
        yield
        await engine.dispose()

    async def core_ctx(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(warm_findings, settings)  # not in the first submission's transaction
        app[WECOM] = WeComClient(
            app[HTTP],
            base_url=settings.wecom.api_base,
            corp_id=settings.wecom.corp_id,
            secret=settings.wecom.secret,
            agent_id=settings.wecom.agent_id,
            clock=app[CLOCK],
        )
        app[SENDER] = OutboxSender(
            db=app[DB], wecom=app[WECOM], clock=app[CLOCK], export_file=export_file, settings=settings
        )
        app[DISPATCHER] = Dispatcher(
            settings=settings,
            db=app[DB],
            clock=app[CLOCK],
            routers=all_routers(),
            sender=app[SENDER],
            texts=views,
        )
        app[SWEEPER] = Sweeper(
            settings=settings,
            db=app[DB],
            clock=app[CLOCK],
            sweeps=all_sweeps(),
            after=app[SENDER].kick,
            reads_web=True,
        )
        if run_scheduler if run_scheduler is not None else run_sender:
            app[SWEEPER].start()
        if run_sender:
            task = asyncio.create_task(app[SENDER].run_forever(), name="outbox-sender")
            app[BACKGROUND].add(task)
            task.add_done_callback(app[BACKGROUND].discard)
        yield
        app[SWEEPER].shutdown()
        for task in list(app[BACKGROUND]):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.extend([http_ctx, db_ctx, core_ctx])
    endpoint = CallbackEndpoint(
        settings=settings, clock=app[CLOCK], crypto=app[CRYPTO], dispatcher=lambda: app[DISPATCHER]
    )
    add_callback_routes(app, settings.server.callback_path, endpoint)
    add_workspace(
        app, settings, clock=app[CLOCK], db=lambda: app[DB], wecom=lambda: app[WECOM],
        kick=lambda: app[SENDER].kick(),
    )
    app.router.add_get("/healthz", on_health)
    return app
