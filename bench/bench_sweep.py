"""Sweep benchmark: a scheduler sweep costs what is due, not what the tables hold.

Run: .venv/bin/python -m bench.bench_sweep [--rows 100000]

Builds two SQLite databases, one with 1% and one with 100% of `--rows` rows of history in
every table the sweeps read (drafts with their decisions and audit entries, accounts, shifts,
incidents, claimed occasions, dedupe keys, sent outbox rows), none of it due. On each it
measures (1) an idle sweep, every sweep run once with nothing due, and (2) a busy sweep, the
first run after 50 accounts cross a warning threshold and 50 drafts pass the reminder time.
The figure that matters is the ratio of the large database to the small one in the same run:
1.0 means the cost does not grow with the tables.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from bench.bench_export import populate
from bot.cli.stack import stack_settings
from bot.core.clock import FrozenClock
from scheduler import all_sweeps
from scheduler.sweeper import Sweeper
from storage.account_models import Account
from storage.db import SessionFactory, init_models, make_engine, make_session_factory
from storage.duty_models import Incident, Shift
from storage.models import Draft, Occasion, OutboxMessage, ProcessedCallback

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai: after every daily time
DUE = 50
IDLE_RUNS = 20
CHUNK = 5000
WATCH = {
    "duty": {"rotation": ["zhaoli", "wangxm"], "leader_rotation": ["liuzr"], "rotation_start": "2026-01-01"},
    "freshness": {"digest_time": "09:00"},
    "reminders": {"remind_after_hours": 24, "escalate_after_hours": 72, "workdays_only": False},
}


async def bulk(db: SessionFactory, model: type, rows: list[dict[str, object]]) -> None:
    async with db() as session, session.begin():
        for first in range(0, len(rows), CHUNK):
            await session.exec(insert(model), params=rows[first : first + CHUNK])  # type: ignore[call-overload]


async def fill_history(db: SessionFactory, rows: int) -> None:
    """`rows` decisions (with drafts and audit), and as many rows of history in the rest."""
    await populate(db, rows)
    past = NOW - timedelta(days=1)
    far = NOW + timedelta(days=10)
    await bulk(
        db,
        Account,
        [
            {
                "name": f"账号{n}",
                "platform": "微信公众号",
                "owners": "zhaoli",
                "status": "active",
                "last_post_at": far - timedelta(days=14),
                "deadline_at": far,
                "created_at": past,
            }
            for n in range(rows // 10)
        ],
    )
    await bulk(
        db,
        Shift,
        [
            {
                "role": "primary",
                "userid": "zhaoli",
                "start_at": NOW - timedelta(days=2 + n),
                "source": "import",
                "end_at": NOW - timedelta(days=1 + n),
            }
            for n in range(rows // 10)
        ],
    )
    await bulk(
        db,
        Incident,
        [
            {
                "content": "历史事件",
                "raised_by": "sunkz",
                "raised_at": past,
                "status": "resolved",
                "task_id": f"t{n}",
            }
            for n in range(rows // 10)
        ],
    )
    await bulk(
        db,
        Occasion,
        [
            {"kind": "account_warning", "subject": f"{n}@history", "occasion": "24h", "claimed_at": past}
            for n in range(rows)
        ],
    )
    await bulk(db, ProcessedCallback, [{"key": f"msg:{n}", "received_at": past} for n in range(rows)])
    await bulk(
        db,
        OutboxMessage,
        [
            {
                "created_at": past,
                "not_before": past,
                "op": "send",
                "recipients": "zhaoli",
                "status": "sent",
                "payload": {"touser": "zhaoli", "msgtype": "text", "text": {"content": "历史"}},
                "sent_at": past,
            }
            for n in range(rows)
        ],
    )


async def make_due(db: SessionFactory) -> None:
    """DUE accounts 20 hours from their deadline and DUE drafts pending for 30 hours."""
    await bulk(
        db,
        Account,
        [
            {
                "name": f"将到期{n}",
                "platform": "微博",
                "owners": "zhaoli",
                "status": "active",
                "last_post_at": NOW - timedelta(hours=316),
                "deadline_at": NOW + timedelta(hours=20),
                "created_at": NOW,
            }
            for n in range(DUE)
        ],
    )
    entered = NOW - timedelta(hours=30)
    await bulk(
        db,
        Draft,
        [
            {
                "title": f"待审稿件{n}",
                "category": "issued",
                "source_kind": "own",
                "source_note": "",
                "disclosure": "active",
                "platforms": "website",
                "submitter_userid": "wangxm",
                "submitter_name": "王小明",
                "status": "in_review",
                "version": 1,
                "stage": 2,
                "round": 1,
                "stage_entered_at": entered,
                "created_at": entered,
                "updated_at": entered,
                "approved_at": None,
            }
            for n in range(DUE)
        ],
    )


def checkpoint(path: Path) -> None:
    """Fold the bulk load's WAL into the database, so sweeps are not billed for copying it."""
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def measure(rows: int, folder: Path) -> tuple[float, float, int]:
    """(median idle sweep ms, busy sweep ms, occasions the busy sweep fired)."""
    path = folder / f"s{rows}.db"
    url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    await init_models(engine)
    db = make_session_factory(engine)
    await fill_history(db, rows)
    checkpoint(path)
    clock = FrozenClock(NOW)
    sweeper = Sweeper(settings=stack_settings(url, WATCH), db=db, clock=clock, sweeps=all_sweeps())
    await sweeper.run_once()  # the day's roster, digest and inspection: once, not measured
    idle = []
    for _ in range(IDLE_RUNS):
        clock.advance(seconds=30)
        started = time.perf_counter()
        await sweeper.run_once()
        idle.append(time.perf_counter() - started)
    await make_due(db)
    checkpoint(path)
    clock.advance(seconds=30)
    started = time.perf_counter()
    fired = await sweeper.run_once()
    busy = time.perf_counter() - started
    await engine.dispose()
    return statistics.median(idle) * 1000, busy * 1000, fired


async def bench(rows: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sanshen-bench-") as folder:
        small, large = rows // 100, rows
        results = {size: await measure(size, Path(folder)) for size in (small, large)}
    print(f"Sweep benchmark: every sweep once, SQLite, history of {small} and {large} rows per table\n")
    print(f"{'sweep':34} {'ms (1%)':>9} {'ms (100%)':>10} {'100%/1%':>8}")
    (idle_s, busy_s, fired_s), (idle_l, busy_l, fired_l) = results[small], results[large]
    print(f"{'idle (nothing due)':34} {idle_s:>9.2f} {idle_l:>10.2f} {idle_l / idle_s:>8.2f}")
    print(
        f"{f'busy ({DUE} accounts + {DUE} drafts due)':34} {busy_s:>9.2f} {busy_l:>10.2f} {busy_l / busy_s:>8.2f}"
    )
    print(f"\noccasions fired by the busy sweep: {fired_s} (1%), {fired_l} (100%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(bench(args.rows))


if __name__ == "__main__":
    main()
