"""Housekeeping sweeps: forget callback dedupe keys long after WeCom could re-send them, give the
memory the bot freed back to the operating system, and warn the admins in time when the holiday
calendar is about to run out."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.core.memory import release_free_memory
from bot.rules.calendar import coverage_warning, local_at, local_day, people_with_role
from bot.wecom.outbox import Outbox
from scheduler.sweeper import SweepContext
from storage.dedupe_repo import prune_callbacks
from storage.occasions_repo import claim_occasion

log = logging.getLogger(__name__)

# WeCom re-sends within seconds (docs/wecom.md §1.7); a week leaves a wide margin for replays too,
# which the ±300 s timestamp window refuses anyway.
KEEP_CALLBACK_KEYS = timedelta(days=7)


async def prune_dedupe_keys(ctx: SweepContext) -> int:
    async with ctx.db() as session, session.begin():
        removed = await prune_callbacks(session=session, before=ctx.now - KEEP_CALLBACK_KEYS)
    if removed:
        log.info("pruned %d old callback keys", removed)
    return 0  # nothing was sent


async def release_memory(ctx: SweepContext) -> int:
    """Once a sweep: RSS comes back down after a busy stretch (an export, a burst of callbacks)
    instead of staying at its high-water mark while the bot is idle (bot.core.memory)."""
    release_free_memory()
    return 0  # nothing was sent


async def calendar_coverage(ctx: SweepContext) -> int:
    """Once a week from the digest time: the admins are told while a year about to begin has no
    法定节假日 data (working-day reminders and holiday rotas would count plain weekdays)."""
    settings = ctx.settings
    today = local_day(ctx.now, settings.tz)
    warning = coverage_warning(settings.calendar, today)
    admins = people_with_role(settings, "admin")
    if not warning or not admins or ctx.now < local_at(today, settings.freshness.digest_time, settings.tz):
        return 0
    year, week, _ = today.isocalendar()
    async with ctx.db() as session, session.begin():
        if not await claim_occasion(
            session=session,
            kind="calendar_gap",
            subject="all",
            occasion=f"{year}-W{week:02d}",
            at=ctx.now,
            by=ctx.instance,
        ):
            return 0
        Outbox(session, ctx.clock).send_text(admins, warning)
    return 1
