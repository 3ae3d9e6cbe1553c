"""Export orchestration shared by /export and the CLI: period parsing and streamed writing."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, BinaryIO, Literal
from zoneinfo import ZoneInfo

from bot.exports.ledger import write_ledger_csv, write_ledger_xlsx
from bot.exports.review_form import write_review_form_csv, write_review_form_xlsx
from bot.exports.streaming import consume_in_thread
from storage.db import SessionFactory, reading
from storage.export_repo import ledger_batches, review_form_batches

Kind = Literal["form", "ledger"]
Format = Literal["xlsx", "csv"]
MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})$")
DAY_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


class PeriodError(ValueError):
    """The period words could not be read (the message is Chinese, for the user)."""


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, from local calendar days; `label` is what the form prints."""

    start: datetime
    end: datetime
    label: str
    slug: str


def _day(text: str) -> date:
    match = DAY_RE.match(text)
    if not match:
        raise PeriodError(f"日期“{text}”应写成 YYYY-MM-DD")
    try:
        return date(*(int(p) for p in match.groups()))
    except ValueError:
        raise PeriodError(f"日期“{text}”不存在") from None


def parse_period(words: list[str], tz: ZoneInfo, today: date) -> Period:
    """No words: this month; 'YYYY-MM': that month; two dates: from the first to the second."""
    if not words:
        first = today.replace(day=1)
        return month_period(first.year, first.month, tz)
    if len(words) == 1:
        match = MONTH_RE.match(words[0])
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise PeriodError(f"月份“{words[0]}”应写成 YYYY-MM")
        return month_period(int(match.group(1)), int(match.group(2)), tz)
    if len(words) == 2:
        first, last = _day(words[0]), _day(words[1])
        if last < first:
            raise PeriodError("结束日期早于开始日期")
        if (last - first).days > 366:
            raise PeriodError("一次最多导出一年")
        return Period(
            _midnight(first, tz), _midnight(last + timedelta(days=1), tz),
            f"{first:%Y年%m月%d日}至{last:%Y年%m月%d日}", f"{first:%Y%m%d}-{last:%Y%m%d}",
        )
    raise PeriodError("时间段最多两个日期")


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return Period(_midnight(first, tz), _midnight(following, tz), f"{year}年{month:02d}月", f"{year}{month:02d}")


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(ZoneInfo("UTC"))




async def write_export(
    db: SessionFactory,
    out: BinaryIO,
    *,
    kind: Kind,
    fmt: Format,
    period: Period,
    unit: str,
    tz: ZoneInfo,
    title: str | None = None,
) -> int:
    """Stream one export into `out`; returns the number of data rows.

    `title` is the 保密审查表's title line (ExportSettings.form_heading; None: the default wording).
    """
    async with reading(db)() as session:  # holds no write lock while the file is built
        if kind == "form":
            batches = review_form_batches(session, period.start, period.end)

            def consume(rows: Iterator[object]) -> int:
                if fmt == "xlsx":
                    return write_review_form_xlsx(rows, out, unit=unit, period_label=period.label, tz=tz, title=title)  # type: ignore[arg-type]
                return _with_text(out, lambda text: write_review_form_csv(rows, text, tz=tz))  # type: ignore[arg-type]
        else:
            batches = ledger_batches(session, period.start, period.end)  # type: ignore[assignment]

            def consume(rows: Iterator[object]) -> int:
                if fmt == "xlsx":
                    return write_ledger_xlsx(rows, out, unit=unit, period_label=period.label, tz=tz)  # type: ignore[arg-type]
                return _with_text(out, lambda text: write_ledger_csv(rows, text, tz=tz))  # type: ignore[arg-type]

        return await consume_in_thread(batches, consume)  # type: ignore[arg-type]


def _with_text(out: BinaryIO, write: object) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)  # type: ignore[arg-type]
    try:
        return write(text)  # type: ignore[operator]
    finally:
        text.flush()
        text.detach()


def export_filename(kind: Kind, fmt: Format, period: Period) -> str:
    name = "保密审查表" if kind == "form" else "三审三校台账"
    return f"{name}_{period.slug}.{fmt}"


async def export_file(db: SessionFactory, payload: dict[str, Any]) -> tuple[str, bytes]:
    """The xlsx a queued /export asks for (the outbox sender calls this when the row is due)."""
    period = Period(
        datetime.fromisoformat(payload["start"]),
        datetime.fromisoformat(payload["end"]),
        payload["label"],
        payload["slug"],
    )
    buffer = io.BytesIO()
    await write_export(
        db, buffer, kind=payload["kind"], fmt="xlsx", period=period,
        unit=payload["unit"], tz=ZoneInfo(payload["timezone"]), title=payload.get("title"),
    )
    return export_filename(payload["kind"], "xlsx", period), buffer.getvalue()
