"""The application factory: builds every resource in cleanup_ctx order and wires the routes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlmodel.ext.asyncio.session import AsyncSession
from wechatpy.work.crypto import WeChatCrypto

from bot import views
from bot.core import metrics
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
from bot.services.findings import lexicon_for
from bot.services.findings import warm as warm_findings
from bot.web.duty_calendar import add_duty_calendar
from bot.web.setup import add_workspace
from bot.wecom.callback import CallbackEndpoint, add_callback_routes
from bot.wecom.client import WeComClient, proxy_address
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
from storage.db import (
    init_models,
    is_sqlite,
    make_engine,
    make_session_factory,
    reading,
    wal_checkpoints,
)
from storage.duty_repo import RosterError, read_roster, upsert_shift
from storage.health_repo import drafts_by_stage, outbox_state
from storage.staff_repo import sync_staff

log = logging.getLogger(__name__)


# /healthz turns degraded when the oldest message due has waited this long, or the scheduler
# (when it runs) has not swept for this many of its intervals.
STALE_OUTBOX = timedelta(minutes=15)
MISSED_SWEEPS = 3
HEALTH_DB_SECONDS = 3


async def on_health(request: web.Request) -> web.Response:
    """200 {"status": "ok", …} or 503 {"status": "degraded", "reason": …, …}: the database
    reachable, the outbox neither paused on an admin-only code (e.g. 可信IP) nor backed up, the
    scheduler sweeping; with the outbox backlog, the last good WeCom call and the last sweep."""
    app = request.app
    sender = app.get(SENDER)
    if sender is None:
        return web.json_response({"status": "starting"}, status=503)
    now = app[CLOCK].now()
    _, paused = sender.health()
    reasons = [paused] if paused else []
    body: dict[str, object] = {}
    try:
        async with asyncio.timeout(HEALTH_DB_SECONDS), reading(app[DB])() as session:
            state = await outbox_state(session, now)
    except Exception as exc:  # unreachable, locked past the timeout, …
        body["database"] = f"unreachable ({type(exc).__name__})"
        reasons.append("database unreachable")
    else:
        body["database"] = "ok"
        waited = int((now - state.oldest_due).total_seconds()) if state.oldest_due is not None else 0
        body["outbox"] = {
            "pending": state.by_status.get("pending", 0),
            "failed": state.by_status.get("failed", 0),
            "oldest_pending_seconds": waited,
        }
        if waited > STALE_OUTBOX.total_seconds():
            reasons.append(f"outbox: the oldest due message has waited {waited}s")
    wecom = app.get(WECOM)
    body["wecom"] = {"last_ok": _iso(wecom.last_ok_at if wecom is not None else None)}
    sweeper = app.get(SWEEPER)
    if sweeper is not None:
        body["scheduler"] = {
            "running": sweeper.started_at is not None,
            "last_sweep": _iso(sweeper.last_sweep_at),
        }
        if sweeper.started_at is not None:
            since = sweeper.last_sweep_at or sweeper.started_at
            allowed = timedelta(seconds=MISSED_SWEEPS * app[SETTINGS].scheduler.sweep_seconds + 60)
            if now - since > allowed:
                reasons.append(f"scheduler: no sweep since {since.isoformat()}")
    status = "degraded" if reasons else "ok"
    return web.json_response(
        {"status": status, **({"reason": "; ".join(reasons)} if reasons else {}), **body},
        status=503 if reasons else 200,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


async def on_metrics(request: web.Request) -> web.Response:
    """Prometheus text format: the process's counters and histograms, and the outbox and draft
    gauges read from the database now (restrict this path at the reverse proxy)."""
    app = request.app
    now = app[CLOCK].now()
    async with reading(app[DB])() as session:
        state = await outbox_state(session, now)
        drafts = await drafts_by_stage(session)
    metrics.OUTBOX_MESSAGES.clear()
    for status, count in state.by_status.items():
        metrics.OUTBOX_MESSAGES.labels(status).set(count)
    metrics.OUTBOX_FAILED.clear()
    for reason, count in state.failed_by_reason.items():
        metrics.OUTBOX_FAILED.labels(reason).set(count)
    metrics.OUTBOX_OLDEST_PENDING.set((now - state.oldest_due).total_seconds() if state.oldest_due else 0)
    metrics.DRAFTS.clear()
    for (status, stage), count in drafts.items():
        metrics.DRAFTS.labels(status, stage).set(count)
    return web.Response(body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


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
        log.warning(
            "no 法定节假日 data for %s: working days count Monday to Friday until [calendar] "
            "lists them (or chinesecalendar is upgraded)",
            ", ".join(map(str, missing)),
        )


async def freeze_startup_heap(app: web.Application) -> None:
    """Keep what start-up built (modules, settings, the staff directory, compiled statements,
    some 180,000 objects) out of the garbage collector's full passes: each such pass walked them
    all, 80–140 ms with every request waiting, every 10–20 s under load (bench.bench_callback)."""
    gc.collect()
    gc.freeze()
    log.info("start-up heap frozen: %d objects left out of garbage collection", gc.get_freeze_count())


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    run_sender: bool = True,
    run_scheduler: bool | None = None,
    freeze_heap: bool = False,
) -> web.Application:
    """Build the bot; nothing is opened until the app starts (cleanup_ctx).

    `run_scheduler` defaults to `run_sender`: tests drive both by hand on an injected clock.
    `freeze_heap`: for a long-running server, not for a process that builds many apps (tests):
    see freeze_startup_heap.
    """
    app = web.Application(client_max_size=512 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock or SystemClock()
    app[BACKGROUND] = set()
    app[CRYPTO] = WeChatCrypto(settings.wecom.token, settings.wecom.encoding_aes_key, settings.wecom.corp_id)

    async def http_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[HTTP] = session
            yield

    async def db_ctx(app: web.Application) -> AsyncIterator[None]:
        async with wal_checkpoints(settings.database.url) as background:
            engine = make_engine(
                settings.database.url, echo=settings.database.echo, background_checkpoints=background
            )
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
        app[WECOM] = WeComClient.for_app(app[HTTP], settings.wecom, app[CLOCK])
        if settings.wecom.proxy:
            log.info("WeCom API calls go through the proxy %s", proxy_address(settings.wecom))
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
            # SQLite has one writer: one group at a time. PostgreSQL takes several transactions
            # at once; 4 overlapping groups measured best (2, 4, 8 tried; bench.bench_callback).
            group_commit=1 if is_sqlite(app[ENGINE]) else 4,
        )
        app[SENDER].give_way_to(app[DISPATCHER].idle)
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
        for task in app[BACKGROUND].copy():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.cleanup_ctx.extend([http_ctx, db_ctx, core_ctx])
    if freeze_heap:
        app.on_startup.append(freeze_startup_heap)  # after cleanup_ctx has built everything
    endpoint = CallbackEndpoint(
        settings=settings, clock=app[CLOCK], crypto=app[CRYPTO], dispatcher=lambda: app[DISPATCHER]
    )
    add_callback_routes(app, settings.server.callback_path, endpoint)
    add_workspace(
        app,
        settings,
        clock=app[CLOCK],
        db=lambda: app[DB],
        wecom=lambda: app[WECOM],
        kick=lambda: app[SENDER].kick(),
    )
    add_duty_calendar(app, settings, clock=app[CLOCK], db=lambda: app[DB])
    app.router.add_get("/healthz", on_health)
    app.router.add_get("/metrics", on_metrics)
    return app
