"""Export benchmark: a year of records (100k decisions) to the 保密审查表 and 台账, xlsx and CSV.

Run: .venv/bin/python -m bench.bench_export [--decisions 100000]

Builds SQLite databases with 50% and 100% of the decisions (3 per draft, spread over 2026),
then for each export measures wall time and peak traced memory (tracemalloc, in a second run so
tracing does not distort the timing). Figures are ratios against baselines from the same run:
time against merely reading the same rows from the database (the floor any export pays), and
memory at 100% against memory at 50% (1.0 means memory does not grow with the row count).

Why 50%: an export holds at most a few batches of rows in flight (bot/streaming.py: a queue
of 4 batches of 1000 rows, plus the batch being read and the one being written). A run smaller
than that working set fits in the pipe entirely and measures the data, not the bound; 50% of
a year is well above it, so the ratio shows whether anything else grows with the rows. How
full the pipe is when the peak is taken depends on thread timing (a slow writer lets it
fill), so a peak may differ between runs within that bound, at either size.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from bot.exports.periods import Period, parse_period
from bot.exports.report_files import figures_in
from bot.exports.runner import write_export
from bot.rules.audit_chain import GENESIS, canonical_payload, chain_hash
from storage.db import SessionFactory, init_models, make_engine, make_session_factory
from storage.export_repo import ledger_batches, review_form_batches
from storage.models import AuditEntry, AuditHead, Draft, StageDecision

TZ = ZoneInfo("Asia/Shanghai")
YEAR_START = datetime(2026, 1, 1, tzinfo=TZ).astimezone(UTC)
REVIEWERS = (("wangxm", "王小明"), ("zhangkz", "张科长"), ("liuzr", "刘主任"))
STAGES = ("一审", "二审", "三审")
CHUNK = 5000


async def populate(db: SessionFactory, decisions: int) -> None:
    """Drafts with three decisions each and the matching audit chain, inserted in bulk."""
    drafts = decisions // 3
    step = timedelta(seconds=365 * 86400 // max(drafts, 1))
    prev = GENESIS
    audit_id = 0
    async with db() as session, session.begin():
        for first in range(1, drafts + 1, CHUNK):
            ids = range(first, min(first + CHUNK, drafts + 1))
            draft_rows, decision_rows, audit_rows = [], [], []
            for draft_id in ids:
                at = YEAR_START + step * draft_id
                reject = draft_id % 10 == 0
                draft_rows.append(
                    {
                        "id": draft_id,
                        "title": f"关于开展第{draft_id}期政务公开工作的通知",
                        "category": "issued",
                        "source_kind": ("own", "reprint", "external")[draft_id % 3],
                        "source_note": "人民网" if draft_id % 3 == 1 else "",
                        "disclosure": "active",
                        "platforms": "website,newmedia",
                        "submitter_userid": "wangxm",
                        "submitter_name": "王小明",
                        "status": "rejected" if reject else "approved",
                        "version": 1,
                        "stage": 3,
                        "round": 1,
                        "stage_entered_at": at,
                        "created_at": at,
                        "updated_at": at,
                        "approved_at": None if reject else at + timedelta(hours=3),
                    }
                )
                for stage in (1, 2, 3):
                    userid, name = REVIEWERS[stage - 1]
                    decided = at + timedelta(hours=stage)
                    decision = "reject" if reject and stage == 3 else "approve"
                    opinion = "表述需核实" if decision == "reject" else ""
                    decision_rows.append(
                        {
                            "draft_id": draft_id,
                            "version": 1,
                            "round": 1,
                            "stage": stage,
                            "stage_name": STAGES[stage - 1],
                            "slot": "*",
                            "reviewer_userid": userid,
                            "reviewer_name": name,
                            "decision": decision,
                            "opinion": opinion,
                            "decided_at": decided,
                            "via": "card",
                            "on_behalf_of": "",
                        }
                    )
                    audit_id += 1
                    payload = {
                        "id": audit_id,
                        "at": decided,
                        "actor": userid,
                        "action": decision,
                        "draft_id": draft_id,
                        "details": {
                            "version": 1,
                            "stage": stage,
                            "stage_name": STAGES[stage - 1],
                            "opinion": opinion,
                            "via": "card",
                        },
                    }
                    digest = chain_hash(prev, canonical_payload(payload))
                    audit_rows.append({**payload, "prev_hash": prev, "hash": digest})
                    prev = digest
            await session.exec(insert(Draft), params=draft_rows)  # type: ignore[call-overload]
            await session.exec(insert(StageDecision), params=decision_rows)  # type: ignore[call-overload]
            await session.exec(insert(AuditEntry), params=audit_rows)  # type: ignore[call-overload]
        session.add(AuditHead(id=1, last_id=audit_id, last_hash=prev))


class Discard(io.RawIOBase):
    """A write-only sink: exports are measured, not kept (a BytesIO would grow with the file)."""

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        return len(data)


async def read_only(db: SessionFactory, kind: str, period: Period) -> int:
    """The baseline: fetch and build every row, write nothing."""
    count = 0
    async with db() as session:
        source = review_form_batches if kind == "form" else ledger_batches
        async for batch in source(session, period.start, period.end):  # type: ignore[operator]
            count += len(batch)
    return count


async def report_figures(db: SessionFactory, period: Period) -> int:
    """/report's figures for the period (what a callback computes before it answers): the
    stage decisions they time."""
    async with db() as session:
        figures = await figures_in(
            session, period, unit="示范市人民政府办公室", tz=TZ, now=period.end, default_period_hours=336
        )
    return sum(stage.decided for stage in figures.stages)


async def measure(run: Callable[[], Awaitable[int]]) -> tuple[float, float, int]:
    """(seconds, peak MiB traced, rows) — timing and memory from separate runs."""
    started = time.perf_counter()
    rows = await run()
    seconds = time.perf_counter() - started
    tracemalloc.start()
    await run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, rows


async def bench(total: int) -> None:
    period = parse_period(["2026-01-01", "2026-12-31"], TZ, datetime.now(TZ).date())
    results: dict[tuple[int, str], tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="sanshen-bench-") as folder:
        sizes = (total // 2, total)
        for size in sizes:
            engine = make_engine(f"sqlite+aiosqlite:///{Path(folder) / f'b{size}.db'}")
            await init_models(engine)
            db = make_session_factory(engine)
            await populate(db, size)
            results[(size, "report figures")] = await measure(lambda db=db: report_figures(db, period))
            for kind in ("form", "ledger"):
                results[(size, f"{kind} read (baseline)")] = await measure(
                    lambda kind=kind, db=db: read_only(db, kind, period)
                )
                for fmt in ("xlsx", "csv"):

                    async def export(kind: str = kind, fmt: str = fmt, db: Any = db) -> int:
                        return await write_export(
                            db,
                            Discard(),
                            kind=kind,
                            fmt=fmt,
                            period=period,  # type: ignore[arg-type]
                            unit="示范市人民政府办公室",
                            tz=TZ,
                        )

                    results[(size, f"{kind} {fmt}")] = await measure(export)
            await engine.dispose()
    small, large = sizes
    print(f"Export benchmark: {small} and {large} decisions over one year (SQLite, one process)\n")
    print(f"{'export':24} {'rows':>8} {'seconds':>8} {'x read':>7} {'peak MiB':>9} {'MiB 100%/50%':>13}")
    for name in (
        "form read (baseline)",
        "form xlsx",
        "form csv",
        "ledger read (baseline)",
        "ledger xlsx",
        "ledger csv",
        "report figures",
    ):
        seconds, peak, rows = results[(large, name)]
        base = results[(large, f"{'form' if name == 'report figures' else name.split()[0]} read (baseline)")][
            0
        ]
        small_peak = results[(small, name)][1]
        print(
            f"{name:24} {rows:>8} {seconds:>8.2f} {seconds / base:>7.2f} {peak:>9.1f} "
            f"{peak / small_peak:>13.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(bench(args.decisions))


if __name__ == "__main__":
    main()
