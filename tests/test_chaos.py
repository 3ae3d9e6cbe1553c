"""The chaos run in small (bench/chaos.py is the full one, with the same code): two bot processes
on one PostgreSQL database, a slow and faulty WeCom simulator over HTTP, SIGKILLs at random
points; every message arrives exactly once and every decision is recorded exactly once."""

from __future__ import annotations

import os
from pathlib import Path

from bench.chaos import ChaosPlan, ChaosRun

# Fixed, so a failure can be repeated (the instants within a call still vary with timing);
# SANSHEN_CHAOS_SEED=N tries another.
SEED = int(os.environ.get("SANSHEN_CHAOS_SEED", "12"))


async def test_chaos_kills_and_faults_neither_double_nor_lose_anything(
    postgres_url: str, tmp_path: Path
) -> None:
    plan = ChaosPlan(
        flows=20,
        seed=SEED,
        kills=2,
        concurrency=20,
        latency=0.05,
        late_fraction=0.03,
        fault_every=(2.0, 5.0),
        down_for=(0.2, 1.0),
        # shrunk so that a killed sender's claim lapses in seconds (shipped: 10 s, 60 s, 5 s)
        client_timeout=1.0,
        claim_seconds=3.0,
        backoff_seconds=1.0,
        step_deadline=120.0,
        settle_deadline=120.0,  # deadlines only; nothing asserts a duration
    )
    report = await ChaosRun(plan, postgres_url, tmp_path).run()
    summary = f"seed {SEED}\n{report.table()}"
    assert report.problems() == [], summary
    assert report.kills == plan.kills, summary
    assert report.flows_done == plan.flows, summary
    assert report.messages_expected >= 12 * plan.flows, summary
    assert report.delivered_once == report.messages_expected, summary
    assert report.duplicates == 0 and report.lost == 0 and report.unexpected == 0, summary
    assert report.decisions_expected == report.decisions_recorded == 3 * plan.flows, summary
    assert report.pending == 0, summary
