"""The 三审三校 台账: every decision and lifecycle action in order, as streamed xlsx and CSV."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import BinaryIO, TextIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from bot.review_form import SHANGHAI, _clean, _csv_safe, write_csv
from storage.export_repo import LedgerRow

LEDGER_HEADER = (
    "序号", "时间", "稿件编号", "信息名称", "版本", "环节", "操作", "操作人", "意见或理由",
    "方式", "代理", "记录哈希",
)
ACTION_LABELS = {
    "submit": "投稿",
    "approve": "同意",
    "reject": "不同意",
    "revise": "修改重审",
    "approved": "通过三审",
    "withdraw": "撤回",
    "transfer": "转审",
    "return": "退回",
    "cc": "抄送",
    "remind": "催办",
    "published": "发布",
}
USER_TEXT_COLUMNS = (3, 7, 8)  # 信息名称, 操作人, 意见或理由: typed by people
VIA_LABELS = {"card": "卡片", "command": "命令"}
STAGE_LABELS = {1: "一审", 2: "二审", 3: "三审"}


def ledger_values(row: LedgerRow, tz: tzinfo, names: dict[str, str] | None = None) -> list[object]:
    """The twelve cells of one ledger line (text; the time local to `tz`)."""
    d = row.details
    stage = d.get("stage_name") or STAGE_LABELS.get(d.get("stage") or d.get("from_stage"), "")
    if row.action == "return":
        stage = f"{STAGE_LABELS.get(d.get('from_stage'), '')}→{STAGE_LABELS.get(d.get('to_stage'), '')}"
    note = d.get("opinion") or d.get("reason") or ""
    if row.action == "transfer":
        note = f"转给 {'、'.join(d.get('to', []))}：{note}"
    elif row.action == "cc":
        note = "抄送 " + "、".join(d.get("to", []))
    elif row.action == "published":
        note = f"{d.get('account', '')} {d.get('url', '')}".strip()
    behalf = d.get("on_behalf_of", "")
    return [
        row.seq,
        row.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
        row.draft_id if row.draft_id is not None else "",
        row.title,
        d.get("version", ""),
        stage,
        ACTION_LABELS.get(row.action, row.action),
        row.actor_name,
        note,
        VIA_LABELS.get(d.get("via", ""), ""),
        (names or {}).get(behalf, behalf),
        row.entry_hash[:16],
    ]


def write_ledger_xlsx(rows: Iterable[LedgerRow], out: BinaryIO, *, unit: str, period_label: str,
                      tz: tzinfo = SHANGHAI) -> int:
    """Stream the ledger to `out` (openpyxl write-only: memory does not grow with rows)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("三审三校台账")
    for letter, width in zip("ABCDEFGHIJKL", (6, 20, 9, 40, 6, 10, 9, 10, 40, 6, 8, 18), strict=True):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A3"
    title = WriteOnlyCell(ws, value=_clean(f"{unit}三审三校台账（{period_label}）"))
    title.font = Font(bold=True, size=14)
    ws.append([title])
    bold = Font(bold=True)
    header = []
    for text in LEDGER_HEADER:
        cell = WriteOnlyCell(ws, value=text)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    count = 0
    for row in rows:
        values = ledger_values(row, tz)
        for index in USER_TEXT_COLUMNS:
            value = _clean(str(values[index]))
            if value.startswith("="):
                cell = WriteOnlyCell(ws, value=value)
                cell.data_type = "s"  # user text is never a formula
                values[index] = cell
            else:
                values[index] = value
        ws.append(values)
        count += 1
    wb.save(out)
    return count


def write_ledger_csv(rows: Iterable[LedgerRow], out_text: TextIO, *, tz: tzinfo = SHANGHAI,
                     bom: bool = True) -> int:
    """Flat CSV (UTF-8 with BOM for Excel); text cells starting with = + - @ get a leading '."""
    lines = ([_csv_safe(v) if isinstance(v, str) else v for v in ledger_values(row, tz)] for row in rows)
    return write_csv(LEDGER_HEADER, lines, out_text, bom=bom)
