"""Writes the 保密审查表 (review form) as streamed xlsx and flat CSV from its rows (bot.rules.review_form)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, tzinfo
from typing import BinaryIO, TextIO
from zoneinfo import ZoneInfo

from xlsxwriter import Workbook as XlsxWorkbook
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_cell_to_rowcol
from xlsxwriter.worksheet import Worksheet

from bot.rules.review_form import (
    DECISIONS,
    DISCLOSURES,
    PLATFORMS,
    SOURCE_KINDS,
    STAGE_NAMES,
    ReviewFormRow,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Control characters XML 1.0 cannot hold (\t, \n and \r are fine), e.g. \x0b pasted from Word.
ILLEGAL_CHARACTERS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

TICK = "√"
DEFAULT_TITLE_SUFFIX = "政府门户网站及政务新媒体政务信息发布保密审查表"
# The three notes printed under the form in the seed (Zhanjiang 2021, 附件).
FORM_NOTES = (
    "注：1. 本表由采编工作人员负责填写和保存；",
    "　　2. 政府门户网站及政务新媒体政务信息发布前均应当认真填写本表；",
    "　　3. 请在所选对应栏目内打“√”。",
)

# Column layout of the form (1-based columns A..Q).
COL_SEQ, COL_TITLE = 1, 2
COL_SOURCE = {"own": 3, "reprint": 4, "external": 5}
COL_DISCLOSURE = {"active": 6, "on_request": 7}
COL_PLATFORM = {"website": 8, "newmedia": 9, "other": 10}
COL_STAGE = ((11, 12), (13, 14), (15, 16))  # (同意, 不同意) per stage
COL_REMARK = 17
N_COLS = 17
LAST_COL = "Q"

HEADER_TOP = (
    "序号", "信息名称", "信息来源", None, None, "公开属性标识", None,
    "发布平台", None, None, "一审意见", None, "二审意见", None, "三审意见", None, "备注",
)
HEADER_SUB = (
    None, None, "本机关制发信息", "转载信息（注明转载来源）", "非本机关信息", "主动公开",
    "依申请公开", "政府网站", "政务新媒体", "其他", "同意", "不同意", "同意", "不同意",
    "同意", "不同意", None,
)
HEADER_MERGES = (
    "A3:A4", "B3:B4", "C3:E3", "F3:G3", "H3:J3", "K3:L3", "M3:N3", "O3:P3", "Q3:Q4",
)
COLUMN_WIDTHS = {
    "A": 6, "B": 36, "C": 9, "D": 16, "E": 9, "F": 8, "G": 8, "H": 8, "I": 8, "J": 6,
    "K": 6, "L": 6, "M": 6, "N": 6, "O": 6, "P": 6, "Q": 44,
}

CSV_HEADER = (
    "序号", "信息名称", "信息来源", "转载来源", "公开属性标识", "发布平台",
    "一审意见", "一审人", "一审时间", "一审意见说明",
    "二审意见", "二审人", "二审时间", "二审意见说明",
    "三审意见", "三审人", "三审时间", "三审意见说明",
    "承办人", "备注",
)


def _clean(text: str) -> str:
    """Drop the control characters that xlsx cannot hold (e.g. \\x0b pasted from Word)."""
    return ILLEGAL_CHARACTERS_RE.sub("", text) if text else ""


def _local(dt: datetime, tz: tzinfo, fmt: str) -> str:
    return dt.astimezone(tz).strftime(fmt)


def _source_cell(row: ReviewFormRow) -> str:
    note = row.source_note.strip()
    return f"{TICK} {note}" if note else TICK


def remark_text(row: ReviewFormRow, tz: tzinfo = SHANGHAI) -> str:
    """The 备注 cell: each decided stage as '一审 张三 01-05 10:02[：意见]', then the remark."""
    parts = []
    for name, op in zip(STAGE_NAMES, row.stage_opinions, strict=True):
        if op is None:
            continue
        part = f"{name} {op.reviewer_name} {_local(op.decided_at, tz, '%m-%d %H:%M')}"
        if op.decision == "reject":
            part += " 不同意"
        if op.opinion.strip():
            part += f"：{op.opinion.strip()}"
        parts.append(part)
    if row.remark.strip():
        parts.append(row.remark.strip())
    return "；".join(parts)


def _form_values(row: ReviewFormRow, tz: tzinfo) -> list[object]:
    """The 17 cell values of one data row (None = empty cell)."""
    values: list[object] = [None] * N_COLS
    values[COL_SEQ - 1] = row.seq
    values[COL_TITLE - 1] = row.title
    col = COL_SOURCE[row.source_kind]
    values[col - 1] = TICK if row.source_kind == "own" else _source_cell(row)
    values[COL_DISCLOSURE[row.disclosure] - 1] = TICK
    for platform in row.platforms:
        values[COL_PLATFORM[platform] - 1] = TICK
    for (yes_col, no_col), op in zip(COL_STAGE, row.stage_opinions, strict=True):
        if op is not None:
            values[(yes_col if op.decision == "approve" else no_col) - 1] = TICK
    values[COL_REMARK - 1] = remark_text(row, tz)
    return values


class FormFormats:
    """The few cell formats of the form, registered once per workbook."""

    def __init__(self, wb: XlsxWorkbook) -> None:
        font = {"font_name": "宋体"}
        center = {"align": "center", "valign": "vcenter", "text_wrap": True}
        left = {"align": "left", "valign": "vcenter", "text_wrap": True}
        self.title = wb.add_format({**font, "font_size": 16, "bold": True, **center})
        self.header = wb.add_format({**font, "font_size": 11, "bold": True, **center, "border": 1})
        self.meta = wb.add_format(left)
        self.cell_center = wb.add_format({**center, "border": 1})
        self.cell_left = wb.add_format({**left, "border": 1})


def open_workbook(out: BinaryIO) -> XlsxWorkbook:
    """A streaming XlsxWriter workbook on `out`.

    constant_memory: each row is flushed to a temp file once the next one starts and strings
    are written inline, so memory does not grow with the rows (rows must go in order). Text is
    only ever written with write_string, so a title like "=HYPERLINK(...)" stays text.
    """
    return XlsxWorkbook(out, {"constant_memory": True, "strings_to_formulas": False,
                              "strings_to_urls": False, "strings_to_numbers": False})


def write_cell(ws: Worksheet, row: int, col: int, value: object, fmt: Format | None = None) -> None:
    """One cell (0-based row and column): numbers as numbers, text cleaned, None as a blank."""
    if value is None:
        ws.write_blank(row, col, None, fmt)
    elif isinstance(value, (int, float)):
        ws.write_number(row, col, value, fmt)
    else:
        ws.write_string(row, col, _clean(str(value)), fmt)


def add_merge(ws: Worksheet, ref: str) -> None:
    """Merge the cells of `ref` ("A3:A4") without writing any: XlsxWriter's merge_range writes
    the whole range, which constant_memory mode refuses once a later row has started, so the
    cells are written in row order by the caller and the range is only registered here."""
    first, last = ref.split(":")
    ws.merge.append([*xl_cell_to_rowcol(first), *xl_cell_to_rowcol(last)])


def write_review_form_xlsx(
    rows: Iterable[ReviewFormRow],
    out: BinaryIO,
    *,
    unit: str,
    period_label: str,
    tz: tzinfo = SHANGHAI,
    title: str | None = None,
) -> int:
    """Stream the 保密审查表 to `out` as xlsx; returns the number of data rows written.

    Layout (one sheet "保密审查表", columns A..Q):
      row 1   title, merged A1:Q1
      row 2   单位：… (A2:H2) | 时间：… (I2:Q2)
      row 3-4 the two-level header with merged cells, as in the seed form
      row 5…  one row per item, "√" in the chosen cells, 备注 with reviewers and local times
      then    承办人/一审/二审/三审签字 lines (distinct names in first-seen order) and 注 1-3.

    Memory: XlsxWriter in constant_memory mode (see open_workbook) keeps one row at a time;
    only the fixed header and footer ranges are merged, in row order as that mode requires.
    The signature lines need the distinct names, which are kept in memory: that grows with
    the number of people, not of rows.
    """
    wb = open_workbook(out)
    ws = wb.add_worksheet("保密审查表")
    fmt = FormFormats(wb)
    for index, width in enumerate(COLUMN_WIDTHS.values()):
        ws.set_column(index, index, width)
    ws.freeze_panes(4, 2)  # C5
    ws.repeat_rows(2, 3)  # print the two header rows on every page
    ws.set_landscape()
    ws.set_paper(9)  # A4

    heading = title if title is not None else f"{unit}{DEFAULT_TITLE_SUFFIX}"
    ws.set_row(0, 32)
    write_cell(ws, 0, 0, heading, fmt.title)
    add_merge(ws, f"A1:{LAST_COL}1")
    write_cell(ws, 1, 0, f"单位：{unit}", fmt.meta)
    write_cell(ws, 1, 8, f"时间：{period_label}", fmt.meta)
    add_merge(ws, "A2:H2")
    add_merge(ws, f"I2:{LAST_COL}2")
    for row_index, header in ((2, HEADER_TOP), (3, HEADER_SUB)):
        for col, value in enumerate(header):
            write_cell(ws, row_index, col, value, fmt.header)  # a blank keeps its border
    for ref in HEADER_MERGES:
        add_merge(ws, ref)

    row_formats = [
        fmt.cell_left if col in (COL_TITLE, COL_REMARK) else fmt.cell_center
        for col in range(1, N_COLS + 1)
    ]
    submitters: dict[str, None] = {}
    reviewers: tuple[dict[str, None], ...] = ({}, {}, {})
    count = 0
    for row in rows:
        row_index = 4 + count
        for col, (value, cell_format) in enumerate(zip(_form_values(row, tz), row_formats, strict=True)):
            write_cell(ws, row_index, col, value, cell_format)
        if row.submitter_name:
            submitters.setdefault(row.submitter_name, None)
        for seen, op in zip(reviewers, row.stage_opinions, strict=True):
            if op is not None and op.reviewer_name:
                seen.setdefault(op.reviewer_name, None)
        count += 1

    footer_row = 4 + count + 1  # one blank row after the table (0-based)
    lines = [
        f"承办人签字：{'、'.join(submitters)}",
        *(f"{name}签字：{'、'.join(seen)}" for name, seen in zip(STAGE_NAMES, reviewers, strict=True)),
        *FORM_NOTES,
    ]
    for offset, line in enumerate(lines):
        write_cell(ws, footer_row + offset, 0, line, fmt.meta)
        add_merge(ws, f"A{footer_row + offset + 1}:{LAST_COL}{footer_row + offset + 1}")
    wb.close()
    return count


def _csv_safe(text: str) -> str:
    """Defuse spreadsheet formula injection: text starting with = + - @ gets a leading '."""
    return "'" + text if text and text[0] in "=+-@\t\r" else text


def _csv_values(row: ReviewFormRow, tz: tzinfo) -> Iterator[object]:
    yield row.seq
    yield _csv_safe(row.title)
    source = SOURCE_KINDS[row.source_kind]
    note = row.source_note.strip()
    yield f"{source}（{note}）" if note else source
    yield _csv_safe(note)
    yield DISCLOSURES[row.disclosure]
    yield "、".join(PLATFORMS[p] for p in PLATFORMS if p in row.platforms)
    for op in row.stage_opinions:
        if op is None:
            yield from ("", "", "", "")
        else:
            yield DECISIONS[op.decision]
            yield _csv_safe(op.reviewer_name)
            yield _local(op.decided_at, tz, "%Y-%m-%d %H:%M:%S")
            yield _csv_safe(op.opinion)
    yield _csv_safe(row.submitter_name)
    yield _csv_safe(row.remark)


def write_review_form_csv(
    rows: Iterable[ReviewFormRow],
    out_text: TextIO,
    *,
    tz: tzinfo = SHANGHAI,
    bom: bool = True,
) -> int:
    """Write the form as flat CSV (one header row, CSV_HEADER columns); returns the row count.

    `out_text` must be opened with newline="" and encoding="utf-8" (not "utf-8-sig": the
    BOM is written here when `bom` is true, so Excel detects UTF-8 instead of GBK). Times
    are local to `tz` as "YYYY-MM-DD HH:MM:SS". Free-text cells starting with = + - @ are
    prefixed with ' so spreadsheet programs do not evaluate them.
    """
    return write_csv(CSV_HEADER, (_csv_values(row, tz) for row in rows), out_text, bom=bom)


def write_csv(
    header: Iterable[str], lines: Iterable[Iterable[object]], out_text: TextIO, *, bom: bool = True
) -> int:
    """CSV for Excel: an optional UTF-8 BOM, the header, then each line; returns the line count."""
    if bom:
        out_text.write("\ufeff")
    writer = csv.writer(out_text)
    writer.writerow(header)
    count = 0
    for line in lines:
        writer.writerow(line)
        count += 1
    return count
