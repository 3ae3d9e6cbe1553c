"""Export orchestration shared by /export and the CLI: period parsing and streamed writing."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, BinaryIO, Literal, TextIO
from zoneinfo import ZoneInfo

from bot.exports.ledger import write_ledger_csv, write_ledger_xlsx
from bot.exports.periods import Period
from bot.exports.review_form import write_review_form_csv, write_review_form_xlsx
from bot.exports.streaming import consume_in_thread
from bot.rules.review_form import ReviewFormRow
from storage.db import SessionFactory, reading
from storage.export_repo import LedgerRow, ledger_batches, review_form_batches

Kind = Literal["form", "ledger"]
Format = Literal["xlsx", "csv"]


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

            def write_form(rows: Iterator[ReviewFormRow]) -> int:
                if fmt == "xlsx":
                    return write_review_form_xlsx(
                        rows, out, unit=unit, period_label=period.label, tz=tz, title=title
                    )
                return _with_text(out, lambda text: write_review_form_csv(rows, text, tz=tz))

            return await consume_in_thread(review_form_batches(session, period.start, period.end), write_form)

        def write_ledger(rows: Iterator[LedgerRow]) -> int:
            if fmt == "xlsx":
                return write_ledger_xlsx(rows, out, unit=unit, period_label=period.label, tz=tz)
            return _with_text(out, lambda text: write_ledger_csv(rows, text, tz=tz))

        return await consume_in_thread(ledger_batches(session, period.start, period.end), write_ledger)


def _with_text(out: BinaryIO, write: Callable[[TextIO], int]) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        return write(text)
    finally:
        text.flush()
        text.detach()


def export_filename(kind: Kind, fmt: Format, period: Period) -> str:
    name = "保密审查表" if kind == "form" else "三审三校台账"
    return f"{name}_{period.slug}.{fmt}"


async def export_file(db: SessionFactory, payload: dict[str, Any]) -> tuple[str, bytes]:
    """The file a queued /export or /report asks for (the outbox sender calls this when the row
    is due): the xlsx, or the report's chart picture."""
    period = Period(
        datetime.fromisoformat(payload["start"]),
        datetime.fromisoformat(payload["end"]),
        payload["label"],
        payload["slug"],
    )
    if payload["kind"] in ("report", "report_chart"):
        from bot.exports.report_files import report_file  # matplotlib loads only for reports

        return await report_file(db, payload, period)
    buffer = io.BytesIO()
    await write_export(
        db,
        buffer,
        kind=payload["kind"],
        fmt="xlsx",
        period=period,
        unit=payload["unit"],
        tz=ZoneInfo(payload["timezone"]),
        title=payload.get("title"),
    )
    return export_filename(payload["kind"], "xlsx", period), buffer.getvalue()
