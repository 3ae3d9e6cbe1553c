"""Scheduled work: the sweeps for duty, account freshness, review reminders and re-checks."""

from __future__ import annotations

from scheduler import audit, duty, freshness, housekeeping, recheck, reminders
from scheduler.sweeper import Sweep


def all_sweeps() -> list[Sweep]:
    """Every sweep the bot runs, in order."""
    return [
        *duty.SWEEPS,
        *freshness.SWEEPS,
        *reminders.SWEEPS,
        *recheck.SWEEPS,
        *audit.SWEEPS,
        housekeeping.prune_dedupe_keys,
        housekeeping.release_memory,
        housekeeping.calendar_coverage,
    ]
