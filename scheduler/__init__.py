"""Scheduled work: the sweeps for duty, account freshness and review reminders."""

from __future__ import annotations

from scheduler import housekeeping
from scheduler.sweeper import Sweep


def all_sweeps() -> list[Sweep]:
    """Every sweep the bot runs, in order."""
    return [housekeeping.prune_dedupe_keys]
