"""Housekeeping sweeps: forget callback dedupe keys long after WeCom could re-send them, and
give the memory the bot freed back to the operating system."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.core.memory import release_free_memory
from scheduler.sweeper import SweepContext
from storage.dedupe_repo import prune_callbacks

log = logging.getLogger(__name__)

# WeCom re-sends within seconds (facts §1.7); a week leaves a wide margin for replays too,
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
