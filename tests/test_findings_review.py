"""智能识错 in review: every version checked before its 一审 card, the counts on every card, /check in chat."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlmodel import select

from bot.cli.stack import Stack
from storage.models import AuditEntry, DraftVersion
from tests.flow import META, active_card, drafts, last_text, say, tap

PHONE = "13912345678"
BODY_WITH_FINDINGS = f"请联系王老师，电话{PHONE}。台湾总统出席了活动。"
CLEAN_BODY = "各有关单位：为提高防汛应急处置能力，定于6月举行防汛演练。"


def subtitle(stack: Stack, user: str) -> str:
    return str(active_card(stack, user).payload["template_card"]["sub_title_text"])


async def test_a_submission_is_checked_before_its_first_card(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    assert (draft.findings, draft.severe_findings) == (2, 2)
    assert subtitle(stack, "wangxm") == f"《联系方式通知》\n智能识错：2 处疑似问题（2 处严重）（/check {draft.id} 查看）"
    async with stack.db() as session:
        (version,) = (await session.exec(select(DraftVersion))).all()
        submitted = (await session.exec(select(AuditEntry).where(AuditEntry.action == "submit"))).one()
    start = BODY_WITH_FINDINGS.index(PHONE)
    assert [(f["n"], f["kind"], f["severity"], f["start"], f["end"], f["text"]) for f in version.findings] == [
        (1, "privacy", "severe", start, start + 11, PHONE),
        (2, "wording", "severe", BODY_WITH_FINDINGS.index("台湾总统"), BODY_WITH_FINDINGS.index("台湾总统") + 4, "台湾总统"),
    ]
    assert (submitted.details["findings"], submitted.details["severe_findings"]) == (2, 2)


async def test_a_clean_draft_says_nothing_was_found_on_every_card(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 防汛演练\n{META}{CLEAN_BODY}")
    assert subtitle(stack, "wangxm") == "《防汛演练》\n智能识错：未发现疑似问题"
    await tap(stack, "wangxm", "同意")
    assert subtitle(stack, "zhangkz") == "《防汛演练》\n智能识错：未发现疑似问题", "二审's card says it too"


async def test_check_lists_the_findings_of_the_current_version(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    await say(stack, "zhaoli", f"/check {draft.id}")  # the other collector holds the 一审 card
    answer = last_text(stack, "zhaoli")
    lines = answer.splitlines()
    assert lines[0] == f"稿件{draft.id}号《联系方式通知》 第1版 智能识错：2 处疑似问题（2 处严重）（识错只是辅助，不代替人工审校）："
    assert lines[1].startswith(f"1. [严重·隐私] 第{BODY_WITH_FINDINGS.index(PHONE) + 1}字「{PHONE}」")
    assert lines[2].startswith(f"2. [严重·规范表述] 第{BODY_WITH_FINDINGS.index('台湾总统') + 1}字「台湾总统」 → 「台湾地区领导人」")
    assert len(lines) == 3


async def test_a_revision_is_checked_again_and_its_cards_say_so(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    await tap(stack, "wangxm", "不同意")
    await say(stack, "wangxm", "请删去个人电话")
    await say(stack, "wangxm", f"/revise {draft.id}\n{CLEAN_BODY}")
    (draft,) = await drafts(stack)
    assert (draft.version, draft.findings, draft.severe_findings) == (2, 0, 0)
    assert subtitle(stack, "wangxm") == "《联系方式通知》\n智能识错：未发现疑似问题"
    await say(stack, "wangxm", f"/check {draft.id}")
    assert last_text(stack, "wangxm") == (
        f"稿件{draft.id}号《联系方式通知》 第2版 智能识错：未发现疑似问题。\n识错只是辅助，仍须人工逐字审校。"
    )
    async with stack.db() as session:
        revised = (await session.exec(select(AuditEntry).where(AuditEntry.action == "revise"))).one()
    assert (revised.details["findings"], revised.details["severe_findings"]) == (0, 0)


async def test_check_refuses_people_outside_the_draft_and_bad_arguments(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    await tap(stack, "wangxm", "同意")  # 一审 done by wangxm: the other collector is no longer involved
    await say(stack, "zhaoli", f"/check {draft.id}")
    assert last_text(stack, "zhaoli") == (
        f"您无权查看稿件{draft.id}号《联系方式通知》的识错结果（仅投稿人、审核人、抄送人和负责人可查看）。"
    )
    await say(stack, "wangxm", "/check")
    assert "/check 编号" in last_text(stack, "wangxm")
    await say(stack, "wangxm", "/check 九")
    assert "/check 编号" in last_text(stack, "wangxm")
    await say(stack, "wangxm", "/check 999")
    assert "999" in last_text(stack, "wangxm") and "识错" not in last_text(stack, "wangxm")


def test_a_bad_line_in_the_units_lists_stops_start_up_naming_it(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "wording.tsv").write_text("# 本单位补充\n台湾政府\t台湾当局\t很严重\n", encoding="utf-8")
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    config = tmp_path / "config.toml"
    config.write_text(
        example.read_text(encoding="utf-8").replace('lists_dir = ""', f'lists_dir = "{lists}"'), encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "-c", str(config)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"配置错误 findings.lists_dir: {lists / 'wording.tsv'} 第 2 行：级别“很严重”无效，应为 severe、warn 或 info\n"
    )
