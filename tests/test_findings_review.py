"""智能识错 in review: every version checked before its 一审 card, the counts on every card, /check in chat."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from openpyxl import load_workbook
from sqlmodel import select

from bot.cli.browser import Phone
from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from storage.audit_repo import verify_audit_log
from storage.models import AuditEntry, DraftVersion, FindingMark, LearnedAllow
from tests.flow import META, active_card, decisions, drafts, last_text, say, tap
from tests.test_export import received_file
from tests.test_proofread import write
from tests.test_proofread_leaders import TABLE

PHONE = "13912345678"
BODY_WITH_FINDINGS = f"请联系王老师，电话{PHONE}。台湾总统出席了活动。"
CLEAN_BODY = "各有关单位：为提高防汛应急处置能力，定于6月举行防汛演练。"


def subtitle(stack: Stack, user: str) -> str:
    return str(active_card(stack, user).payload["template_card"]["sub_title_text"])


async def test_a_submission_is_checked_before_its_first_card(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    assert (draft.findings, draft.severe_findings) == (2, 2)
    assert (
        subtitle(stack, "wangxm")
        == f"《联系方式通知》\n智能识错：2 处疑似问题（2 处严重）（/check {draft.id} 查看）"
    )
    async with stack.db() as session:
        (version,) = (await session.exec(select(DraftVersion))).all()
        submitted = (await session.exec(select(AuditEntry).where(AuditEntry.action == "submit"))).one()
    start = BODY_WITH_FINDINGS.index(PHONE)
    assert [
        (f["n"], f["kind"], f["severity"], f["start"], f["end"], f["text"]) for f in version.findings
    ] == [
        (1, "privacy", "severe", start, start + 11, PHONE),
        (
            2,
            "wording",
            "severe",
            BODY_WITH_FINDINGS.index("台湾总统"),
            BODY_WITH_FINDINGS.index("台湾总统") + 4,
            "台湾总统",
        ),
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
    assert (
        lines[0]
        == f"稿件{draft.id}号《联系方式通知》 第1版 智能识错：2 处疑似问题（2 处严重）（识错只是辅助，不代替人工审校）："
    )
    assert lines[1].startswith(f"1. [严重·隐私] 第{BODY_WITH_FINDINGS.index(PHONE) + 1}字「{PHONE}」")
    assert lines[2].startswith(
        f"2. [严重·规范表述] 第{BODY_WITH_FINDINGS.index('台湾总统') + 1}字「台湾总统」 → 「台湾地区领导人」"
    )
    assert (
        lines[3] == f"同意前须逐项标记严重问题：/check {draft.id} 已核实 1（或 已修改、误报；可写多个序号）。"
    )
    assert len(lines) == 4


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
    await say(stack, "wangxm", f"/check {draft.id} 已核实 1 2")
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
        example.read_text(encoding="utf-8").replace('lists_dir = ""', f'lists_dir = "{lists}"'),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check-config", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == (
        f"配置错误 findings.lists_dir: {lists / 'wording.tsv'} 第 2 行：级别“很严重”无效，应为 severe、warn 或 info\n"
    )


async def test_approval_waits_until_the_reviewer_has_marked_every_severe_finding(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    card = active_card(stack, "wangxm").payload["template_card"]
    await tap(stack, "wangxm", "同意")
    assert last_text(stack, "wangxm") == (
        f"稿件{draft.id}号《联系方式通知》有 2 处严重疑似问题您尚未核对（第1、2处），暂不能同意。"
        f"请先发送 /check {draft.id} 查看，再逐项标记：/check {draft.id} 已核实 1（或 已修改、误报；可写多个序号）。"
    )
    assert await decisions(stack) == [] and stack.sim.card(card["task_id"]).is_active_for("wangxm")
    await say(stack, "wangxm", f"/check {draft.id} 已核实 1")
    assert (
        last_text(stack, "wangxm")
        == f"已将稿件{draft.id}号《联系方式通知》第1版第1处识错结果标记为“已核实”。"
    )
    await say(stack, "wangxm", f"/approve {draft.id}")
    assert "尚未核对（第2处）" in last_text(stack, "wangxm"), "the command path is held back too"
    await say(stack, "wangxm", f"/check {draft.id} 误报 2")
    stack.clock.advance(seconds=1)  # type: ignore[attr-defined]  # a new tap (WeCom dedupes on user + time)
    await tap(stack, "wangxm", "同意")
    (decision,) = await decisions(stack)
    assert (decision.stage, decision.decision, decision.finding_marks) == (
        1,
        "approve",
        {"1": "verified", "2": "false_alarm"},
    )
    async with stack.db() as session:
        approved = (await session.exec(select(AuditEntry).where(AuditEntry.action == "approve"))).one()
    assert approved.details["finding_marks"] == {"1": "verified", "2": "false_alarm"}
    async with stack.db() as session:
        assert (await verify_audit_log(session=session)).ok

    await tap(stack, "zhangkz", "同意")  # 二审 marks for himself: 一审's marks are not his
    assert "尚未核对（第1、2处）" in last_text(stack, "zhangkz")
    await say(stack, "zhangkz", f"/check {draft.id} 修改 1 2")
    stack.clock.advance(seconds=1)  # type: ignore[attr-defined]
    await tap(stack, "zhangkz", "同意")
    assert [d.finding_marks for d in await decisions(stack)] == [
        {"1": "verified", "2": "false_alarm"},
        {"1": "fixed", "2": "fixed"},
    ]
    await say(stack, "wangxm", f"/draft {draft.id}")
    assert "识错核对：第1处已核实、第2处误报" in last_text(stack, "wangxm")


async def test_a_false_alarm_is_learned_and_not_flagged_again(stack: Stack) -> None:
    hotline = "请拨打政务服务热线13800138000咨询。"
    await say(stack, "wangxm", f"/submit 热线通知\n{META}{hotline}")
    (draft,) = await drafts(stack)
    assert (draft.findings, draft.severe_findings) == (1, 1)
    await say(stack, "wangxm", f"/check {draft.id} 误报 1")
    assert last_text(stack, "wangxm") == (
        f"已将稿件{draft.id}号《热线通知》第1版第1处识错结果标记为“误报”。"
        "“13800138000”已加入本单位识错白名单，以后的稿件不再提示。"
    )
    await say(stack, "zhaoli", f"/submit 热线再通知\n{META}{hotline}台湾总统出席。")
    _, second = await drafts(stack)
    assert (second.findings, second.severe_findings) == (1, 1), "only 台湾总统 now"
    async with stack.db() as session:
        version = (await session.exec(select(DraftVersion).where(DraftVersion.draft_id == second.id))).one()
    assert [f["text"] for f in version.findings] == ["台湾总统"]


async def test_a_format_false_alarm_is_recorded_but_not_learned(stack: Stack) -> None:
    body = "一、总则\n二、范围\n四、附则"
    await say(stack, "wangxm", f"/submit 序号\n{META}{body}")
    (draft,) = await drafts(stack)
    assert (draft.findings, draft.severe_findings) == (1, 0)
    await say(stack, "wangxm", f"/check {draft.id} 误报 1")
    assert last_text(stack, "wangxm") == f"已将稿件{draft.id}号《序号》第1版第1处识错结果标记为“误报”。"
    await say(stack, "zhaoli", f"/submit 序号二\n{META}{body}")
    _, second = await drafts(stack)
    assert second.findings == 1, "a skipped 序号 is still flagged elsewhere"
    await tap(stack, "zhaoli", "同意")  # a warning does not hold 同意 back
    assert [d.draft_id for d in await decisions(stack)] == [second.id]


async def test_marks_refuse_bad_arguments_and_drafts_out_of_review(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    for wrong in (f"/check {draft.id} 误报", f"/check {draft.id} 乱写 1", f"/check {draft.id} 误报 一"):
        await say(stack, "wangxm", wrong)
        assert last_text(stack, "wangxm").endswith("/check 编号 [已核实|已修改|误报 序号…]"), wrong
    await say(stack, "wangxm", f"/check {draft.id} 误报 3")
    assert last_text(stack, "wangxm") == (
        f"稿件{draft.id}号《联系方式通知》第1版没有第3处识错结果（共 2 处），请发送 /check {draft.id} 查看。"
    )
    await say(stack, "wangxm", f"/withdraw {draft.id} 不发了")
    await say(stack, "wangxm", f"/check {draft.id} 误报 1")
    assert last_text(stack, "wangxm") == f"稿件{draft.id}号《联系方式通知》不在审核中，不能再标记识错结果。"
    async with stack.db() as session:
        assert (await session.exec(select(FindingMark))).all() == []
        assert (await session.exec(select(LearnedAllow))).all() == []


async def test_the_ledger_shows_the_marks_and_the_decision_that_relied_on_them(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    await say(stack, "wangxm", f"/check {draft.id} 误报 1")
    await say(stack, "wangxm", f"/check {draft.id} 已修改 2")
    await tap(stack, "wangxm", "同意")
    await say(stack, "liuzr", "导出 2026-11-01 2026-11-30 台账")
    _, content = received_file(stack, "liuzr")
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    lines = [(r[6], r[7], r[8], r[9]) for r in rows[2:]]
    assert lines == [
        ("投稿", "王小明", None, None),
        ("识错核对", "王小明", "第1处：误报（加入识错白名单：13912345678）", None),
        ("识错核对", "王小明", "第2处：已修改", None),
        ("同意", "王小明", None, "智能识错：第1处误报、第2处已修改"),
    ]


async def test_the_page_shows_the_findings_and_takes_the_marks_with_the_decision(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    assert draft.id is not None
    await say(stack, "wangxm", f"/check {draft.id} 已核实 1 2")
    await tap(stack, "wangxm", "同意")
    async with Phone(stack, "zhangkz") as phone:
        page = await phone.get(f"/app/drafts/{draft.id}/")
        assert "智能识错：2 处疑似问题（2 处严重）" in page.plain
        assert "严重·隐私 请联系王老师，电话13912345678。台湾总统出席了活动。 → 139****5678" in " ".join(
            page.plain.split()
        )
        assert "→ 台湾地区领导人" in page.plain and "新华社禁用词" in page.plain
        assert 'name="mark-1"' in page.text and 'name="mark-2"' in page.text
        body = page.text[page.text.index('<section class="body"') :]
        assert '<mark id="f-1" class="finding severe" title="第1处 严重·隐私：→ 139****5678（' in body
        assert f">{PHONE}</mark>" in body and '<a class="context" href="#f-2">' in page.text
        refused = await phone.decide(draft.id, "approve", page=page)
        assert "您尚未核对（第1、2处），暂不能同意" in refused.plain
        half = await phone.decide(draft.id, "approve", page=page, marks={1: "verified"})
        assert "您尚未核对（第2处），暂不能同意" in half.plain
        assert "您已标记：已核实" in half.plain, "the marks made are kept for the next try"
        assert [d.stage for d in await decisions(stack)] == [1]
        done = await phone.decide(draft.id, "approve", page=page, marks={1: "verified", 2: "fixed"})
        assert "二审" in done.plain
        again = await phone.get(f"/app/drafts/{draft.id}/")
        assert "您已标记：已核实" in again.plain and "您已标记：已修改" in again.plain
    assert [(d.stage, d.via, d.finding_marks) for d in await decisions(stack)] == [
        (1, "card", {"1": "verified", "2": "verified"}),
        (2, "page", {"1": "verified", "2": "fixed"}),
    ]


async def test_marks_from_a_stale_page_are_not_recorded(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 联系方式通知\n{META}{BODY_WITH_FINDINGS}")
    (draft,) = await drafts(stack)
    assert draft.id is not None
    async with Phone(stack, "wangxm") as phone:
        page = await phone.get(f"/app/drafts/{draft.id}/")
        await tap(stack, "wangxm", "不同意")
        await say(stack, "wangxm", "请删去个人电话")
        await say(stack, "wangxm", f"/revise {draft.id}\n{BODY_WITH_FINDINGS}")  # version 2, same findings
        stale = await phone.decide(draft.id, "approve", page=page, marks={1: "false_alarm", 2: "false_alarm"})
    assert "请刷新页面" in stale.plain
    async with stack.db() as session:
        assert (await session.exec(select(FindingMark))).all() == []
        assert (await session.exec(select(LearnedAllow))).all() == []


async def test_the_units_lists_reach_every_submission(
    database_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    """findings.lists_dir: the unit's leaders table and its own wording entry apply in review."""
    write(tmp_path, "leaders.tsv", TABLE)
    write(tmp_path, "wording.tsv", "示范新区管委会\t示范新区管理委员会\tinfo\t本单位规范名称\n")
    settings = stack_settings(database_url, {"findings": {"lists_dir": str(tmp_path)}})
    async with running_stack(settings, clock) as stack:
        body = "市长张建国出席示范新区管委会揭牌仪式。"
        await say(stack, "wangxm", f"/submit 揭牌\n{META}{body}")
        (draft,) = await drafts(stack)
        async with stack.db() as session:
            (version,) = (await session.exec(select(DraftVersion))).all()
    assert [(f["kind"], f["severity"], f["text"], f["suggestion"]) for f in version.findings] == [
        ("leader", "severe", "市长", "市委书记"),
        ("wording", "info", "示范新区管委会", "示范新区管理委员会"),
    ]
    assert (draft.findings, draft.severe_findings) == (2, 1)
