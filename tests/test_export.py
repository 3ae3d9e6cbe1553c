"""/export and the CLI: the 保密审查表 and 台账 files, permissions, periods, and audit verification."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import update
from sqlmodel import col, delete, select

from bot.cli.stack import Stack
from bot.exports.periods import Period
from bot.exports.runner import write_export
from storage.models import AuditEntry, ProcessedCallback
from tests.flow import last_text, say, tap
from tests.test_review_flow import SUBMISSION

ROOT = Path(__file__).resolve().parent.parent


async def walk_two_drafts(stack: Stack) -> None:
    """Draft 1 passes 三审; draft 2 (a reprint) is rejected at 二审."""
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")
    await say(
        stack,
        "zhaoli",
        '/submit =HYPERLINK("http://x")转载稿\n转载：人民网\n公开：主动公开\n平台：政务新媒体\n正文',
    )
    await tap(stack, "zhaoli", "同意")
    await say(stack, "sunkz", "/reject 2 来源需核实")


def received_file(stack: Stack, user: str) -> tuple[str, bytes]:
    files = [d for d in stack.sim.inbox(user) if d.msgtype == "file"]
    assert files, f"{user} received no file"
    media = stack.sim.media[files[-1].payload["file"]["media_id"]]
    return media.filename, media.content


async def test_export_review_form_as_the_seed_form(stack: Stack) -> None:
    await walk_two_drafts(stack)
    await say(stack, "chenfb", "/export 2026-11")
    assert "正在生成2026年11月的保密审查表" in last_text(stack, "chenfb")
    filename, content = received_file(stack, "chenfb")
    assert filename == "保密审查表_202611.xlsx"
    sheet = load_workbook(io.BytesIO(content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[3][:3] == ("序号", "信息名称", "信息来源")
    assert (rows[3][10], rows[3][12], rows[3][14], rows[3][15]) == (
        "一审意见",
        "二审意见",
        "三审意见",
        "备注",
    )
    first, second = rows[5], rows[6]
    assert first[1] == "关于开展2025年防汛演练的通知"
    assert first[2] == "√" and first[5] == "√" and first[7] == "√" and first[8] == "√"
    assert (first[10], first[12], first[14]) == ("√", "√", "同意")
    assert "二审 张科长" in first[15] and "三审 刘主任" in first[15]
    assert second[1].startswith("=HYPERLINK"), "a title is text, never a formula"
    assert second[3] == "√ 人民网" and second[8] == "√"
    assert second[10] == "√" and second[13] == "√" and second[14] is None  # 二审 不同意
    assert "来源需核实" in second[15]
    footer = [r[0] for r in rows[7:] if r[0]]
    assert any(str(t).startswith("承办人签字：王小明、赵丽") for t in footer)
    assert sheet["B7"].data_type == "s" and sheet["D7"].border.left.style == "thin"
    assert sheet["D5"].font.b and sheet["A1"].font.sz == 16
    assert sheet.page_setup.orientation == "landscape"


async def test_export_ledger_lists_every_action_in_order(stack: Stack) -> None:
    await walk_two_drafts(stack)
    await say(stack, "liuzr", "导出 2026-11-01 2026-11-30 台账")
    filename, content = received_file(stack, "liuzr")
    assert filename == "三审三校台账_20261101-20261130.xlsx"
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    assert rows[1][:9] == (
        "序号",
        "时间",
        "稿件编号",
        "信息名称",
        "版本",
        "环节",
        "操作",
        "操作人",
        "意见或理由",
    )
    actions = [(r[2], r[6], r[7]) for r in rows[2:]]
    assert actions == [
        (1, "投稿", "王小明"),
        (1, "同意", "王小明"),
        (1, "同意", "张科长"),
        (1, "同意", "刘主任"),
        (1, "审校完成，可发布", "系统"),
        (2, "投稿", "赵丽"),
        (2, "同意", "赵丽"),
        (2, "不同意", "孙科长"),
    ]
    assert rows[-1][8] == "来源需核实" and rows[-1][9] is None and rows[-1][10] == "命令"
    sheet = load_workbook(io.BytesIO(content)).active
    title_cells = [sheet.cell(row=n, column=4) for n in range(3, sheet.max_row + 1)]
    assert any(c.value.startswith("=HYPERLINK") and c.data_type == "s" for c in title_cells), (
        "text, never a formula"
    )
    assert sheet.freeze_panes == "A3"


class HeldOpen:
    """A file an export writes into that stops, mid-file, until the test lets it go on."""

    def __init__(self) -> None:
        self.writing = threading.Event()
        self.go_on = threading.Event()
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        if "关于开展2025年防汛演练的通知".encode() in data:  # rows are being read: the export's read is open
            self.writing.set()
            assert self.go_on.wait(60), "the test never let the export go on"
        return len(data)

    def flush(self) -> None: ...
    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False


async def test_a_long_export_holds_up_no_callback(stack: Stack) -> None:
    """While an export reads a year's rows, callbacks are applied: its read holds no write lock
    (on SQLite a read used to begin IMMEDIATE and make every writer wait until the file was done)."""
    await walk_two_drafts(stack)
    out = HeldOpen()
    period = Period(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), "2026年", "2026")

    def ledger(into: object) -> Coroutine[Any, Any, int]:
        return write_export(
            stack.db,
            into,
            kind="ledger",
            fmt="csv",
            period=period,  # type: ignore[arg-type]
            unit="测试单位",
            tz=ZoneInfo("Asia/Shanghai"),
        )

    export = asyncio.create_task(ledger(out))
    assert await asyncio.to_thread(out.writing.wait, 30), "the export never started writing rows"
    try:
        async with stack.db() as session, session.begin():  # what every callback does first
            session.add(ProcessedCallback(key="written-during-the-export", received_at=stack.clock.now()))
    finally:
        out.go_on.set()
    rows = await export
    async with stack.db() as session:
        assert await session.get(ProcessedCallback, "written-during-the-export") is not None
    undisturbed = io.BytesIO()
    assert await ledger(undisturbed) == rows > 0
    assert b"".join(out.chunks) == undisturbed.getvalue(), "the held export is whole"


async def test_export_refusals_and_bad_periods(stack: Stack) -> None:
    await say(stack, "wangxm", "/export")
    assert "没有使用 /export 的权限" in last_text(stack, "wangxm")
    await say(stack, "chenfb", "/export 2026-13")
    assert "月份“2026-13”应写成 YYYY-MM" in last_text(stack, "chenfb")
    await say(stack, "chenfb", "/export 2026-11-30 2026-11-01")
    assert "结束日期早于开始日期" in last_text(stack, "chenfb")
    assert not [d for d in stack.sim.inbox("chenfb") if d.msgtype == "file"]
    assert not [d for d in stack.sim.inbox("wangxm") if d.msgtype == "file"]


async def test_export_of_an_empty_month_is_an_empty_form(stack: Stack) -> None:
    await walk_two_drafts(stack)
    await say(stack, "chenfb", "/export 2026-10")
    _, content = received_file(stack, "chenfb")
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    assert rows[3][0] == "序号"
    assert not [r for r in rows[5:] if isinstance(r[0], int)], "no data rows for a month without decisions"


def write_config(tmp_path: Path, database_url: str) -> Path:
    example = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    text = example.replace('url = "sqlite+aiosqlite:///./data/sanshen.db"', f'url = "{database_url}"')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


async def test_cli_export_csv_and_audit_verification(sqlite_stack: Stack, tmp_path: Path) -> None:
    stack = sqlite_stack
    await walk_two_drafts(stack)
    config = write_config(tmp_path, stack.settings.database.url)
    out = tmp_path / "ledger.csv"
    done = run_cli(
        "export",
        "-c",
        str(config),
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-30",
        "--kind",
        "ledger",
        "--format",
        "csv",
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "已导出 8 条" in done.stdout
    lines = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert lines[0][:3] == ["序号", "时间", "稿件编号"]
    assert lines[6][3].startswith("'=HYPERLINK"), "formula injection is defused in CSV"

    done = run_cli("verify-audit", "-c", str(config))
    assert done.returncode == 0 and "审计日志完整：共" in done.stdout, done.stdout + done.stderr

    async with stack.db() as session, session.begin():
        await session.exec(
            update(AuditEntry).where(col(AuditEntry.id) == 3).values(details={"opinion": "改"})
        )  # type: ignore[call-overload]
    done = run_cli("verify-audit", "-c", str(config))
    assert done.returncode == 1 and "第 3 条" in done.stdout and "内容" in done.stdout


async def test_cli_audit_verification_catches_truncation(sqlite_stack: Stack, tmp_path: Path) -> None:
    stack = sqlite_stack
    await walk_two_drafts(stack)
    config = write_config(tmp_path, stack.settings.database.url)
    async with stack.db() as session, session.begin():
        last = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc()))).first()
        assert last is not None
        await session.exec(delete(AuditEntry).where(col(AuditEntry.id) == last.id))  # type: ignore[call-overload]
    done = run_cli("verify-audit", "-c", str(config))
    assert done.returncode == 1 and "截断" in done.stdout
