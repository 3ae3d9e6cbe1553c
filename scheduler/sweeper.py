"""Runs the idempotent sweeps: on an APScheduler interval in production, on demand in tests.

Due dates live in our tables and every message a sweep sends is guarded by a claimed
Occasion row, so a sweep may run any number of times, on any number of instances, after
any downtime: each occasion fires once, and a missed stretch is caught up once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.metrics import SWEEP_FAILURES, SWEEP_SECONDS
from storage.db import SessionFactory
from storage.occasions_repo import claim_occasion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepContext:
    """What a sweep may use: settings, the database, the injected clock's reading."""

    settings: Settings
    db: SessionFactory
    clock: Clock
    now: datetime
    instance: str
    reads_web: bool = False  # whether sweeps may read the web (the 巡检's pages): the bot's own sweeper

    async def claim_day_past(
        self, session: AsyncSession, kind: str, subject: str, due: datetime
    ) -> int | None:
        """For a message sent once a day after `due` (overdue alarms and reminders): which whole
        day past it this is (0 on the day itself), claimed now by this instance; None when this
        day's was claimed already."""
        day = int((self.now - due) // timedelta(days=1))
        claimed = await claim_occasion(
            session=session, kind=kind, subject=subject, occasion=f"day{day}", at=self.now, by=self.instance
        )
        return day if claimed else None


Sweep = Callable[[SweepContext], Awaitable[int]]


class Sweeper:
    """Calls every sweep in turn; one failing sweep never stops the others."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: SessionFactory,
        clock: Clock,
        sweeps: Sequence[Sweep],
        after: Callable[[], None] | None = None,
        reads_web: bool = False,
    ) -> None:
        self._settings = settings
        self._db = db
        self._clock = clock
        self._sweeps = tuple(sweeps)
        self._after = after
        self._reads_web = reads_web
        self.instance = f"sanshen-{uuid.uuid4().hex[:12]}"
        self._scheduler: AsyncIOScheduler | None = None
        self.last_sweep_at: datetime | None = None  # /healthz: a scheduler that stopped sweeping
        self.started_at: datetime | None = None  # when its interval trigger started (None: driven by hand)

    async def run_once(self) -> int:
        """Run every sweep at the clock's current reading; returns how many occasions fired."""
        context = SweepContext(
            self._settings, self._db, self._clock, self._clock.now(), self.instance, self._reads_web
        )
        fired = 0
        for sweep in self._sweeps:
            name = getattr(sweep, "__name__", str(sweep))
            began = time.perf_counter()
            try:
                fired += await sweep(context)
            except Exception:
                SWEEP_FAILURES.labels(name).inc()
                log.exception("sweep %s failed", name)
            SWEEP_SECONDS.labels(name).observe(time.perf_counter() - began)
        self.last_sweep_at = self._clock.now()
        if fired and self._after is not None:
            self._after()
        return fired

    def start(self) -> None:
        """Start the interval trigger on the running event loop (coalesced, never overlapping)."""
        scheduler = AsyncIOScheduler(timezone=self._settings.tz)
        scheduler.add_job(
            self.run_once,
            IntervalTrigger(seconds=self._settings.scheduler.sweep_seconds),
            id="sweeps",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        scheduler.start()
        self._scheduler = scheduler
        self.started_at = self._clock.now()
        log.info("scheduler started: sweeps every %ss", self._settings.scheduler.sweep_seconds)

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
