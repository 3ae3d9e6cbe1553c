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

from bot.core.config import ExportSettings
from bot.rules.review_form import (
    DISCLOSURES,
    PLATFORMS,
    SOURCE_KINDS,
    STAGE_NAMES,
    ReviewFormRow,
    StageOpinion,
    stage_label,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Control characters XML 1.0 cannot hold (\t, \n and \r are fine), e.g. \x0b pasted from Word.
ILLEGAL_CHARACTERS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

TICK = "√"
# The three notes printed under the form in the seed (Zhanjiang 2021, 附件).
FORM_NOTES = (
    "注：1. 本表由采编工作人员负责填写和保存；",
    "　　2. 政府门户网站及政务新媒体政务信息发布前均应当认真填写本表；",
    "　　3. 请在所选对应栏目内打“√”。",
)

# Column layout of the seed form (1-based columns A..P): 一审 and 二审 have 同意/不同意 boxes to
# tick, 三审意见 is one column in which the opinion is written.
COL_SEQ, COL_TITLE = 1, 2
COL_SOURCE = {"own": 3, "reprint": 4, "external": 5}
COL_DISCLOSURE = {"active": 6, "on_request": 7}
COL_PLATFORM = {"website": 8, "newmedia": 9, "other": 10}
COL_TICKED_STAGES = ((11, 12), (13, 14))  # (同意, 不同意) of 一审 and 二审
COL_THIRD = 15
COL_REMARK = 16
N_COLS = 16
LAST_COL = "P"
HEADER_ROW = 3  # 0-based: title, 单位, 时间, then the two header rows
FIRST_DATA_ROW = HEADER_ROW + 2

HEADER_TOP = (
    "序号",
    "信息名称",
    "信息来源",
    None,
    None,
    "公开属性标识",
    None,
    "发布平台",
    None,
    None,
    "一审意见",
    None,
    "二审意见",
    None,
    "三审意见",
    "备注",
)
HEADER_SUB = (
    None,
    None,
    "本机关制发信息",
    "转载信息（注明转载来源）",
    "非本机关信息",
    "主动公开",
    "依申请公开",
    "政府网站",
    "政务新媒体",
    "其他",
    "同意",
    "不同意",
    "同意",
    "不同意",
    None,
    None,
)
HEADER_MERGES = ("A4:A5", "B4:B5", "C4:E4", "F4:G4", "H4:J4", "K4:L4", "M4:N4", "O4:O5", "P4:P5")
COLUMN_WIDTHS = {
    "A": 6,
    "B": 36,
    "C": 9,
    "D": 16,
    "E": 9,
    "F": 8,
    "G": 8,
    "H": 8,
    "I": 8,
    "J": 6,
    "K": 6,
    "L": 6,
    "M": 6,
    "N": 6,
    "O": 18,
    "P": 50,
}

CSV_HEADER = (
    "序号",
    "信息名称",
    "信息来源",
    "转载来源",
    "公开属性标识",
    "发布平台",
    "一审意见",
    "一审签字",
    "一审时间",
    "二审意见",
    "二审签字",
    "二审时间",
    "三审意见",
    "三审签字",
    "三审时间",
    "承办人",
    "备注",
)


def _clean(text: str) -> str:
    """Drop the control characters that xlsx cannot hold (e.g. \\x0b pasted from Word)."""
    return ILLEGAL_CHARACTERS_RE.sub("", text) if text else ""


def _local(dt: datetime, tz: tzinfo, fmt: str) -> str:
    return dt.astimezone(tz).strftime(fmt)


def _source_cell(row: ReviewFormRow) -> str:
    note = row.source_note.strip()
    return f"{TICK} {note}" if note else TICK


def _state_text(row: ReviewFormRow) -> str:
    if row.state == "approved":
        return "已通过"
    if row.state == "withdrawn":
        return "已撤回"
    if row.state == "retracted":
        return "已通过，发布后撤稿"
    if row.state == "classified":
        return "保密审查认定涉密，不得公开"
    if row.state == "rejected":
        rejected = any(op is not None and op.decision == "reject" for op in row.stage_opinions)
        return "不同意，已退回投稿人修改" if rejected else "已退回投稿人修改"
    return f"审核中（{stage_label(row.current_stage)}）"


def _signature(stage: int, op: StageOpinion, tz: tzinfo, *, with_opinion: bool, label: str = "") -> str:
    text = f"{label or stage_label(stage)} {op.reviewer_name} {_local(op.decided_at, tz, '%m-%d %H:%M')}"
    if op.decision == "reject":
        text += " 不同意"
    if with_opinion and op.opinion.strip():
        text += f"：{op.opinion.strip()}"
    return text


def remark_text(row: ReviewFormRow, tz: tzinfo = SHANGHAI, *, signatures: bool = True) -> str:
    """The 备注 cell: version and where the item stands, the signers, then earlier versions.

    E.g. 「稿件2号第2版，已通过。签字：一审 赵丽 11-05 10:02；二审 孙科长 11-05 11:00；三审 刘主任
    11-05 12:00。此前：第1版二审不同意（孙科长：来源需核实）」. The signers are here because the
    seed form has no signature column: its 签字 lines sit under the table, one set per sheet,
    while a sheet lists many items signed by different people, so each row names its own
    signers (谁签字谁负责) in 备注, the one free column, and the printed layout stays the seed's.
    一审/二审 are ticks only, so their opinions go here; 三审's is in its own column. The CSV
    has signer columns, so its 备注 leaves the signatures out (`signatures=False`).
    """
    parts = [
        f"稿件{row.draft_id}号第{row.version}版，{'重要稿件（主要领导审签），' if row.important else ''}{_state_text(row)}"
    ]
    if signatures:
        # A 重要稿件's last stage is the 主要领导's 审签 (ChainSettings.with_principal).
        signing = max((n for n, _ in row.later_stages), default=0) if row.important else 0
        signed = [
            _signature(stage, op, tz, with_opinion=stage != 3, label="审签" if stage == signing else "")
            for stage, op in (*enumerate(row.stage_opinions, start=1), *row.later_stages)
            if op is not None
        ]
        if signed:
            parts.append("签字：" + "；".join(signed))
    earlier = []
    for version in row.earlier:
        if version.stage:
            why = f"：{version.opinion}" if version.opinion else ""
            earlier.append(
                f"第{version.version}版{stage_label(version.stage)}不同意（{version.reviewer_name}{why}）"
            )
        else:
            earlier.append(f"第{version.version}版未审完即修改")
    if earlier:
        parts.append("此前：" + "；".join(earlier))
    return "。".join(parts)


def _form_values(row: ReviewFormRow, tz: tzinfo) -> list[object]:
    """The 16 cell values of one data row (None = empty cell)."""
    values: list[object] = [None] * N_COLS
    values[COL_SEQ - 1] = row.seq
    values[COL_TITLE - 1] = row.title
    col = COL_SOURCE[row.source_kind]
    values[col - 1] = TICK if row.source_kind == "own" else _source_cell(row)
    values[COL_DISCLOSURE[row.disclosure] - 1] = TICK
    for platform in row.platforms:
        values[COL_PLATFORM[platform] - 1] = TICK
    for (yes_col, no_col), op in zip(COL_TICKED_STAGES, row.stage_opinions[:2], strict=True):
        if op is not None:
            values[(yes_col if op.decision == "approve" else no_col) - 1] = TICK
    third = row.stage_opinions[2]
    if third is not None:
        values[COL_THIRD - 1] = third.verdict()
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
    return XlsxWorkbook(
        out,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )


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

    Layout (one sheet "保密审查表", columns A..P), as the seed's 附件:
      row 1   the title ([export] form_title), merged A1:P1
      row 2   单位：…, merged A2:P2
      row 3   时间：… (the period), merged A3:P3
      row 4-5 the two-level header with the seed's merged cells: 信息来源 (3 boxes),
              公开属性标识 (2), 发布平台 (3), 一审意见 and 二审意见 (同意/不同意 each), then
              三审意见 and 备注, each one column over both rows
      row 6…  one row per item: "√" in the chosen boxes, 三审意见 written out, 备注 (remark_text)
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
    ws.freeze_panes(FIRST_DATA_ROW, 2)  # C6
    ws.repeat_rows(HEADER_ROW, HEADER_ROW + 1)  # print the two header rows on every page
    ws.set_landscape()
    ws.set_paper(9)  # A4

    heading = title if title is not None else ExportSettings().form_heading(unit)
    ws.set_row(0, 32)
    write_cell(ws, 0, 0, heading, fmt.title)
    add_merge(ws, f"A1:{LAST_COL}1")
    for row_index, line in ((1, f"单位：{unit}"), (2, f"时间：{period_label}")):
        write_cell(ws, row_index, 0, line, fmt.meta)
        add_merge(ws, f"A{row_index + 1}:{LAST_COL}{row_index + 1}")
    for row_index, header in ((HEADER_ROW, HEADER_TOP), (HEADER_ROW + 1, HEADER_SUB)):
        for col, label in enumerate(header):
            write_cell(ws, row_index, col, label, fmt.header)  # a blank keeps its border
    for ref in HEADER_MERGES:
        add_merge(ws, ref)

    row_formats = [
        fmt.cell_left if col in (COL_TITLE, COL_REMARK) else fmt.cell_center for col in range(1, N_COLS + 1)
    ]
    submitters: dict[str, None] = {}
    signers: tuple[dict[str, None], ...] = ({}, {}, {})
    count = 0
    for row in rows:
        row_index = FIRST_DATA_ROW + count
        for col, (value, cell_format) in enumerate(zip(_form_values(row, tz), row_formats, strict=True)):
            write_cell(ws, row_index, col, value, cell_format)
        if row.submitter_name:
            submitters.setdefault(row.submitter_name, None)
        for seen, op in zip(signers, row.stage_opinions, strict=True):
            if op is not None and op.reviewer_name:
                for name in op.reviewer_name.split("、"):  # a 会签's signers one by one
                    seen.setdefault(name, None)
        count += 1

    footer_row = FIRST_DATA_ROW + count + 1  # one blank row after the table (0-based)
    lines = [
        f"承办人签字：{'、'.join(submitters)}",
        *(f"{name}签字：{'、'.join(seen)}" for name, seen in zip(STAGE_NAMES, signers, strict=True)),
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
            yield from ("", "", "")
        else:
            yield _csv_safe(op.verdict())
            yield _csv_safe(op.reviewer_name)
            yield _local(op.decided_at, tz, "%Y-%m-%d %H:%M:%S")
    yield _csv_safe(row.submitter_name)
    yield _csv_safe(remark_text(row, tz, signatures=False))


def write_review_form_csv(
    rows: Iterable[ReviewFormRow],
    out_text: TextIO,
    *,
    tz: tzinfo = SHANGHAI,
    bom: bool = True,
) -> int:
    """Write the form as flat CSV (one header row, CSV_HEADER columns); returns the row count.

    The flat equivalent of the xlsx: one line per item, each stage's opinion written out
    (「同意」, 「不同意：理由」) with its signer's name and time, 备注 without the signatures.

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
