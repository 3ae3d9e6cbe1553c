"""The 保密审查表 true to the seed form: layout and merged cells, one row per item, unfinished items, signers by name."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet

from bot.cli.stack import DEMO_STAFF, Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.exports.periods import month_period
from bot.exports.runner import write_export
from tests.flow import drafts, say, tap
from tests.test_export import received_file
from tests.test_review_flow import SUBMISSION

TITLE = "关于开展2025年防汛演练的通知"
REPRINT = "/submit 转载稿\n转载：人民网\n公开：依申请公开\n平台：政务新媒体、其他\n正文第一版"

# The seed's two header rows (湛江 2021 附件), cell by cell, columns A..P: 一审 and 二审 have
# 同意/不同意 boxes, 三审意见 and 备注 are one column each over both rows.
SEED_HEADER_TOP = (
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
SEED_HEADER_SUB = (
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
SEED_MERGES = {
    "A1:P1",
    "A2:P2",
    "A3:P3",
    "A4:A5",
    "B4:B5",
    "C4:E4",
    "F4:G4",
    "H4:J4",
    "K4:L4",
    "M4:N4",
    "O4:O5",
    "P4:P5",
}


async def export_sheet(stack: Stack, period: str = "2026-11") -> Worksheet:
    await say(stack, "chenfb", f"/export {period}")
    _, content = received_file(stack, "chenfb")
    return load_workbook(io.BytesIO(content)).active  # type: ignore[return-value]


def data_rows(sheet: Worksheet) -> list[tuple[Any, ...]]:
    """The item rows: from row 6 until the blank row before the signature lines."""
    rows = []
    for row in sheet.iter_rows(min_row=6, values_only=True):
        if not isinstance(row[0], int):
            break
        rows.append(row)
    return rows


def footer(sheet: Worksheet) -> list[str]:
    return [r[0] for r in sheet.iter_rows(min_row=6, values_only=True) if isinstance(r[0], str)]


async def export_csv(stack: Stack) -> list[list[str]]:
    buffer = io.BytesIO()
    await write_export(
        stack.db,
        buffer,
        kind="form",
        fmt="csv",
        period=month_period(2026, 11, stack.settings.tz),
        unit=stack.settings.unit_name,
        tz=stack.settings.tz,
    )
    return list(csv.reader(io.StringIO(buffer.getvalue().decode("utf-8-sig"))))


async def approve_all(stack: Stack, first: str, second: str, third: str) -> None:
    for user in (first, second, third):
        stack.clock.advance(minutes=10)
        await tap(stack, user, "同意")


async def test_an_approved_item_on_the_seed_form_cell_by_cell(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)  # 09:00
    await approve_all(stack, "wangxm", "zhangkz", "liuzr")  # 09:10, 09:20, 09:30
    sheet = await export_sheet(stack)
    rows = list(sheet.iter_rows(max_row=5, values_only=True))
    assert rows[0][0] == "示范市人民政府办公室政府门户网站及政务新媒体政务信息发布保密审查表"
    assert (rows[1][0], rows[2][0]) == ("单位：示范市人民政府办公室", "时间：2026年11月")
    assert rows[3] == SEED_HEADER_TOP and rows[4] == SEED_HEADER_SUB
    assert sheet.max_column == 16
    assert data_rows(sheet) == [
        (
            1,
            TITLE,
            "√",
            None,
            None,
            "√",
            None,
            "√",
            "√",
            None,
            "√",
            None,
            "√",
            None,
            "同意",
            "稿件1号第1版，已通过。签字：一审 王小明 11-23 09:10；二审 张科长 11-23 09:20；三审 刘主任 11-23 09:30",
        )
    ]
    assert footer(sheet) == [
        "承办人签字：王小明",
        "一审签字：王小明",
        "二审签字：张科长",
        "三审签字：刘主任",
        "注：1. 本表由采编工作人员负责填写和保存；",
        "\u3000\u30002. 政府门户网站及政务新媒体政务信息发布前均应当认真填写本表；",
        "\u3000\u30003. 请在所选对应栏目内打“√”。",
    ]
    merged = {str(r) for r in sheet.merged_cells.ranges}
    assert merged == SEED_MERGES | {f"A{n}:P{n}" for n in range(8, 15)}, (
        "header as the seed, footer lines A:P"
    )
    assert sheet["A8"].value == "承办人签字：王小明"
    assert sheet.freeze_panes == "C6" and sheet.print_title_rows == "$4:$5"
    assert sheet["O4"].font.b and sheet["O6"].border.left.style == "thin"

    lines = await export_csv(stack)
    assert lines[0] == [
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
    ]
    assert lines[1:] == [
        [
            "1",
            TITLE,
            "本机关制发信息",
            "",
            "主动公开",
            "政府网站、政务新媒体",
            "同意",
            "王小明",
            "2026-11-23 09:10:00",
            "同意",
            "张科长",
            "2026-11-23 09:20:00",
            "同意",
            "刘主任",
            "2026-11-23 09:30:00",
            "王小明",
            "稿件1号第1版，已通过",
        ]
    ]


async def test_a_rejected_then_revised_item_is_one_row(stack: Stack) -> None:
    await say(stack, "zhaoli", REPRINT)  # 09:00
    stack.clock.advance(minutes=10)
    await tap(stack, "zhaoli", "同意")  # 09:10
    stack.clock.advance(minutes=10)
    await say(stack, "sunkz", "/reject 1 来源需核实")  # 09:20
    stack.clock.advance(minutes=10)
    await say(stack, "zhaoli", "/revise 1\n正文第二版")  # 09:30
    await approve_all(stack, "zhaoli", "zhangkz", "liuzr")  # 09:40, 09:50, 10:00
    sheet = await export_sheet(stack)
    assert data_rows(sheet) == [
        (
            1,
            "转载稿",
            None,
            "√ 人民网",
            None,
            None,
            "√",
            None,
            "√",
            "√",
            "√",
            None,
            "√",
            None,
            "同意",
            "稿件1号第2版，已通过。签字：一审 赵丽 11-23 09:40；二审 张科长 11-23 09:50；三审 刘主任 11-23 10:00。"
            "此前：第1版二审不同意（孙科长：来源需核实）",
        )
    ]
    assert "二审签字：张科长" in footer(sheet), "the rejection of version 1 is no signature of the row"
    lines = await export_csv(stack)
    assert len(lines) == 2
    assert lines[1][2:6] == ["转载信息（人民网）", "人民网", "依申请公开", "政务新媒体、其他"]
    assert lines[1][9:12] == ["同意", "张科长", "2026-11-23 09:50:00"]
    assert lines[1][16] == "稿件1号第2版，已通过。此前：第1版二审不同意（孙科长：来源需核实）"


async def test_a_rejected_item_not_yet_revised_shows_the_rejection(stack: Stack) -> None:
    await say(stack, "zhaoli", REPRINT)
    await tap(stack, "zhaoli", "同意")
    await say(stack, "sunkz", "/reject 1 来源需核实")
    (row,) = data_rows(await export_sheet(stack))
    assert row[10:15] == ("√", None, None, "√", None), "一审 同意, 二审 不同意, no 三审"
    assert (
        row[15]
        == "稿件1号第1版，不同意，已退回投稿人修改。签字：一审 赵丽 11-23 09:00；二审 孙科长 11-23 09:00 不同意：来源需核实"
    )
    lines = await export_csv(stack)
    assert lines[1][9:15] == ["不同意：来源需核实", "孙科长", "2026-11-23 09:00:00", "", "", ""]


async def test_unfinished_items_do_not_look_finished(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")  # draft 1 waits for 二审
    stack.clock.advance(minutes=10)
    await say(stack, "zhaoli", REPRINT)
    await tap(stack, "zhaoli", "同意")
    await tap(stack, "sunkz", "同意")
    await say(stack, "zhaoli", "/withdraw 2 标题需调整")  # draft 2 withdrawn before 三审
    stack.clock.advance(minutes=10)
    await say(stack, "wangxm", SUBMISSION.replace(TITLE, "尚未审核的稿件"))  # draft 3: no decision yet
    sheet = await export_sheet(stack)
    first, second, third = data_rows(sheet)
    assert first[:2] == (1, TITLE) and first[10:16] == (
        "√",
        None,
        None,
        None,
        None,
        "稿件1号第1版，审核中（二审）。签字：一审 王小明 11-23 09:00",
    )
    assert second[:2] == (2, "转载稿") and second[10:16] == (
        "√",
        None,
        "√",
        None,
        None,
        "稿件2号第1版，已撤回。签字：一审 赵丽 11-23 09:10；二审 孙科长 11-23 09:10",
    )
    assert third[:2] == (3, "尚未审核的稿件") and third[10:16] == (
        None,
        None,
        None,
        None,
        None,
        "稿件3号第1版，审核中（一审）",
    )
    assert "三审签字：" in footer(sheet), "nobody signed 三审"
    lines = await export_csv(stack)
    assert [line[16] for line in lines[1:]] == [
        "稿件1号第1版，审核中（二审）",
        "稿件2号第1版，已撤回",
        "稿件3号第1版，审核中（一审）",
    ]
    assert lines[1][9:15] == ["", "", "", "", "", ""]


async def test_after_a_return_only_the_current_round_counts(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    await say(stack, "liuzr", "/return 1 二审 口径再核")  # round 2 starts at 二审
    (row,) = data_rows(await export_sheet(stack))
    assert row[10:16] == (
        "√",
        None,
        None,
        None,
        None,
        "稿件1号第1版，审核中（二审）。签字：一审 王小明 11-23 09:00",
    )
    await tap(stack, "sunkz", "同意")
    await tap(stack, "liuzr", "同意")
    (row,) = data_rows(await export_sheet(stack))
    assert "二审 孙科长" in row[15] and "张科长" not in row[15]


async def test_an_item_belongs_to_the_month_of_its_latest_decision(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)  # 2026-11-23
    await tap(stack, "wangxm", "同意")
    stack.clock.advance(days=8)  # 2026-12-01
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")
    assert data_rows(await export_sheet(stack, "2026-11")) == []
    (row,) = data_rows(await export_sheet(stack, "2026-12"))
    assert row[14] == "同意"


async def test_the_title_line_comes_from_config(database_url: str, clock: FrozenClock) -> None:
    settings = stack_settings(
        database_url, {"export": {"form_title": "{unit_name}信息发布保密审查表（试行）"}}
    )
    async with running_stack(settings, clock) as stack:
        sheet = await export_sheet(stack)
    assert sheet["A1"].value == "示范市人民政府办公室信息发布保密审查表（试行）"


# A second leader, who stands in for 刘主任 while he is away.
STAND_IN = {"userid": "wangfz", "name": "王副主任", "roles": ["leader"]}


@pytest.fixture
async def deputy_stack(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    settings = stack_settings(database_url, {"staff": [*DEMO_STAFF, STAND_IN]})
    async with running_stack(settings, clock) as running:
        yield running


async def test_a_delegate_signs_with_both_names(deputy_stack: Stack) -> None:
    stack = deputy_stack
    await say(stack, "wangxm", SUBMISSION)
    await say(stack, "liuzr", "/away 至 2026-11-30 代理 wangfz")
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "wangfz", "同意")
    (draft,) = await drafts(stack)
    assert draft.status == "approved"
    sheet = await export_sheet(stack)
    (row,) = data_rows(sheet)
    assert row[14] == "同意"
    assert row[15].endswith("三审 王副主任（代刘主任） 11-23 09:00")
    assert "三审签字：王副主任（代刘主任）" in footer(sheet)
    everything = [str(v) for r in sheet.iter_rows(values_only=True) for v in r if v is not None]
    assert not [v for v in everything if "liuzr" in v or "wangfz" in v], "names, never userids"
    lines = await export_csv(stack)
    assert lines[1][12:15] == ["同意", "王副主任（代刘主任）", "2026-11-23 09:00:00"]

    await say(stack, "chenfb", "/export 台账")
    _, content = received_file(stack, "chenfb")
    ledger = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    (signed,) = [r for r in ledger[2:] if r[7] == "王副主任"]
    assert signed[11] == "刘主任", "the 台账's 代理 column names the away reviewer too"


async def test_a_classified_item_and_an_important_one_say_so_in_the_remark(stack: Stack) -> None:
    from tests.flow import META

    await say(stack, "wangxm", f"/submit 内部部署\n{META}正文")
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "涉密不得公开")
    await say(stack, "zhangkz", "含未公开的工作部署")
    await say(stack, "liuzr", "导出 2026-11")
    _, content = received_file(stack, "liuzr")
    sheet = load_workbook(io.BytesIO(content)).active
    remark = next(str(c.value) for c in sheet["P"] if c.value and "稿件1号" in str(c.value))
    assert "保密审查认定涉密，不得公开" in remark
    assert sheet["N6"].value == "√", "二审 不同意 is ticked"
