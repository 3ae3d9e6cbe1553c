"""Builds the report's files for the outbox and the CLI: the figures read once, then the xlsx or
the chart, in a worker thread so the event loop keeps answering callbacks."""

from __future__ import annotations

import asyncio
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.exports.chart import render_chart
from bot.exports.periods import Period
from bot.exports.report import Figures, compute_figures, report_filename, write_report_xlsx
from storage.db import SessionFactory, reading
from storage.report_repo import period_facts


async def figures_in(
    session: AsyncSession,
    period: Period,
    *,
    unit: str,
    tz: ZoneInfo,
    now: datetime,
    default_period_hours: int,
) -> Figures:
    """The period's figures as `session` sees the data, as of `now`."""
    facts = await period_facts(session, period.start, period.end)
    return compute_figures(
        facts, period, unit=unit, now=now, tz=tz, default_period_hours=default_period_hours
    )


async def load_figures(
    db: SessionFactory, period: Period, *, unit: str, tz: ZoneInfo, now: datetime, default_period_hours: int
) -> Figures:
    async with reading(db)() as session:
        return await figures_in(
            session, period, unit=unit, tz=tz, now=now, default_period_hours=default_period_hours
        )


def report_bytes(figures: Figures, tz: ZoneInfo) -> bytes:
    buffer = io.BytesIO()
    write_report_xlsx(figures, buffer, tz)
    return buffer.getvalue()


async def report_file(db: SessionFactory, payload: dict[str, Any], period: Period) -> tuple[str, bytes]:
    tz = ZoneInfo(payload["timezone"])
    figures = await load_figures(
        db,
        period,
        unit=payload["unit"],
        tz=tz,
        now=datetime.fromisoformat(payload["as_of"]),
        default_period_hours=int(payload["period_hours"]),
    )
    loop = asyncio.get_running_loop()
    if payload["kind"] == "report_chart":
        return report_filename(period, "png"), await loop.run_in_executor(None, render_chart, figures)
    return report_filename(period), await loop.run_in_executor(None, report_bytes, figures, tz)
