"""The 三审三校 台账: every decision and lifecycle action in order, as streamed xlsx and CSV."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import BinaryIO, TextIO

from bot.exports.review_form import SHANGHAI, _csv_safe, open_workbook, write_cell, write_csv
from bot.rules.finding_marks import MARK_LABELS, marks_text, numbers_text
from storage.export_repo import LedgerRow

LEDGER_HEADER = (
    "序号",
    "时间",
    "稿件编号",
    "信息名称",
    "版本",
    "环节",
    "操作",
    "操作人",
    "意见或理由",
    "核对要点",
    "方式",
    "代理",
    "记录哈希",
)
ACTION_LABELS = {
    "submit": "投稿",
    "approve": "同意",
    "reject": "不同意",
    "revise": "修改重审",
    "approved": "审校完成，可发布",
    "withdraw": "撤回",
    "transfer": "转审",
    "return": "退回",
    "cc": "抄送",
    "remind": "催办",
    "published": "发布",
    "proof": "校对",
    "cosign": "加签会签",
    "finding_mark": "识错核对",
}

PROOF_RESULTS = {"passed": "校对无误", "changed": "有修改"}
VIA_LABELS = {"card": "卡片", "command": "命令", "page": "网页"}
STAGE_LABELS = {1: "一审", 2: "二审", 3: "三审"}


def _stage_label(stage: object) -> str:
    """一审/二审/三审 for a stage number of an entry's details; "" for anything else (or none)."""
    return STAGE_LABELS.get(stage, "") if isinstance(stage, int) else ""


def ledger_values(row: LedgerRow, tz: tzinfo) -> list[object]:
    """The thirteen cells of one ledger line (text; the time local to `tz`); 核对要点 lists the
    checklist items the reviewer ticked on the draft page; people are named, never userids."""
    d = row.details

    def people(userids: list[str]) -> str:
        return "、".join(row.names.get(u, u) for u in userids)

    stage = d.get("stage_name") or _stage_label(d.get("stage") or d.get("from_stage"))
    if row.action == "return":
        stage = f"{_stage_label(d.get('from_stage'))}→{_stage_label(d.get('to_stage'))}"
    note = d.get("opinion") or d.get("reason") or ""
    if row.action == "transfer":
        note = f"转给 {people(d.get('to', []))}：{note}"
    elif row.action == "cosign":
        note = f"加签 {people(d.get('to', []))}（会签：{people(d.get('people', []))}）：{note}"
    elif row.action == "cc":
        note = "抄送 " + people(d.get("to", []))
    elif row.action == "published":
        note = f"{d.get('account', '')} {d.get('url', '')}".strip()
    elif row.action == "finding_mark":  # a reviewer's mark on 智能识错 findings
        note = f"第{numbers_text(d.get('numbers', []))}处：{MARK_LABELS.get(d.get('mark', ''), '')}"
        if d.get("learned"):
            note += "（加入识错白名单：" + "、".join(d["learned"]) + "）"
    elif row.action == "proof":  # 校次 in 环节; method and result, then the corrections
        stage = f"{d.get('stage_name', '')}（{d.get('method', '')}）"
        note = PROOF_RESULTS.get(d.get("result", ""), "") + (f"：{d['note']}" if d.get("note") else "")
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
        "；".join(
            [
                *d.get("checklist", []),
                *([f"智能识错：{marks_text(d['finding_marks'])}"] if d.get("finding_marks") else []),
            ]
        ),
        VIA_LABELS.get(d.get("via", ""), ""),
        people([behalf]) if behalf else "",
        row.entry_hash[:16],
    ]


def write_ledger_xlsx(
    rows: Iterable[LedgerRow], out: BinaryIO, *, unit: str, period_label: str, tz: tzinfo = SHANGHAI
) -> int:
    """Stream the ledger to `out` (XlsxWriter constant_memory: memory does not grow with rows)."""
    wb = open_workbook(out)
    ws = wb.add_worksheet("三审三校台账")
    for index, width in enumerate((6, 20, 9, 40, 6, 10, 9, 10, 40, 40, 6, 8, 18)):
        ws.set_column(index, index, width)
    ws.freeze_panes(2, 0)  # A3
    write_cell(
        ws, 0, 0, f"{unit}三审三校台账（{period_label}）", wb.add_format({"bold": True, "font_size": 14})
    )
    bold = wb.add_format({"bold": True})
    for col, text in enumerate(LEDGER_HEADER):
        write_cell(ws, 1, col, text, bold)
    count = 0
    for row in rows:
        for col, value in enumerate(ledger_values(row, tz)):
            if value != "":
                write_cell(ws, 2 + count, col, value)  # text is never a formula
        count += 1
    wb.close()
    return count


def write_ledger_csv(
    rows: Iterable[LedgerRow], out_text: TextIO, *, tz: tzinfo = SHANGHAI, bom: bool = True
) -> int:
    """Flat CSV (UTF-8 with BOM for Excel); text cells starting with = + - @ get a leading '."""
    lines = ([_csv_safe(v) if isinstance(v, str) else v for v in ledger_values(row, tz)] for row in rows)
    return write_csv(LEDGER_HEADER, lines, out_text, bom=bom)
