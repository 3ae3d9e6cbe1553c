"""Housekeeping sweep: forgets callback dedupe keys long after WeCom could re-send them."""

from __future__ import annotations

import logging
from datetime import timedelta

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
