"""重要稿件: marked by the submitter or by keyword, signed by the 主要领导 after 三审 (审签), named on every card."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from openpyxl import load_workbook
from sqlmodel import select

from bot.cli.stack import DEMO_STAFF, Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from storage.models import AuditEntry
from tests.flow import META, active_card, decisions, drafts, last_text, say, tap
from tests.test_export import received_file

PRINCIPAL = {"userid": "wangzr", "name": "王主任", "roles": ["principal"]}


@pytest.fixture
async def unit(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    settings = stack_settings(
        database_url,
        {
            "staff": [*DEMO_STAFF, PRINCIPAL],
            "review": {"important_keywords": ["重大"]},
        },
    )
    async with running_stack(settings, clock) as running:
        yield running


async def through_three_reviews(stack: Stack) -> None:
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")


async def test_an_important_draft_waits_for_the_principal_after_three_reviews(unit: Stack) -> None:
    stack = unit
    await say(stack, "wangxm", f"/submit 关于调整公交线路的通知\n{META}重要：是\n正文")
    card = active_card(stack, "zhaoli").payload["template_card"]
    assert "【重要稿件】" in card["sub_title_text"], "every card says it is important"
    await through_three_reviews(stack)
    (draft,) = await drafts(stack)
    assert (draft.status, draft.stage) == ("in_review", 4), "三审 is not the end of an important draft"
    signing = active_card(stack, "wangzr").payload["template_card"]
    assert (
        signing["main_title"]["title"].startswith("【审签】") and "【重要稿件】" in signing["sub_title_text"]
    )
    await say(stack, "liuzr", "/approve 1")  # the leader of 三审 cannot sign again
    assert "同一稿件的各审须由不同的人完成" in last_text(stack, "liuzr")
    await say(stack, "chenfb", "/approve 1")  # nor an admin
    assert "不是" in last_text(stack, "chenfb")
    await tap(stack, "wangzr", "同意")
    (draft,) = await drafts(stack)
    assert draft.status == "approved"
    assert [(d.stage, d.stage_name, d.reviewer_userid) for d in await decisions(stack)][-1] == (
        4,
        "审签",
        "wangzr",
    )
    await say(stack, "liuzr", "导出 2026-11")
    _, content = received_file(stack, "liuzr")
    remark = next(
        str(c.value)
        for c in load_workbook(io.BytesIO(content)).active["P"]
        if c.value and "稿件1号" in str(c.value)
    )
    assert "重要稿件（主要领导审签）" in remark and "审签 王主任" in remark


async def test_a_keyword_makes_a_draft_important_and_the_record_says_why(unit: Stack) -> None:
    stack = unit
    await say(stack, "wangxm", f"/submit 关于重大项目开工的通知\n{META}正文")
    (draft,) = await drafts(stack)
    assert draft.important
    async with stack.db() as session:
        entry = (await session.exec(select(AuditEntry).where(AuditEntry.action == "submit"))).one()
    assert entry.details["important"] == ["重大"]
    await say(stack, "zhaoli", f"/submit 一般通知\n{META}重要：否\n正文")
    assert not (await drafts(stack))[1].important


async def test_without_a_principal_an_important_draft_is_refused_and_nothing_is_created(stack: Stack) -> None:
    await say(stack, "wangxm", f"/submit 通知\n{META}重要：是\n正文")
    assert "没有主要领导" in last_text(stack, "wangxm")
    assert await drafts(stack) == []


async def test_with_proofreading_the_third_proof_follows_the_principals_signature(
    database_url: str, clock: FrozenClock
) -> None:
    settings = stack_settings(database_url, {"staff": [*DEMO_STAFF, PRINCIPAL]}, proofreading=True)
    async with running_stack(settings, clock) as stack:
        await say(stack, "wangxm", f"/submit 通知\n{META}重要：是\n正文")
        await tap(stack, "wangxm", "同意")
        await tap(stack, "wangxm", "校对无误")
        await tap(stack, "zhaoli", "校对无误")
        await tap(stack, "zhangkz", "同意")
        await tap(stack, "zhangkz", "校对无误")
        await tap(stack, "liuzr", "同意")
        (draft,) = await drafts(stack)
        assert (draft.stage, draft.step) == (4, "review"), "审签 comes straight after 三审"
        await tap(stack, "wangzr", "同意")
        (draft,) = await drafts(stack)
        assert (draft.stage, draft.step) == (4, "proof"), "三校 proofreads what the 主要领导 signed"
        assert (
            active_card(stack, "sunkz").payload["template_card"]["main_title"]["title"]
            == "【三校】待校对稿件"
        )


async def test_a_full_three_reviews_three_proofs_with_important_and_joint_review_names_everyone(
    database_url: str, clock: FrozenClock
) -> None:
    from storage.audit_repo import verify_audit_log

    staff = [*DEMO_STAFF, PRINCIPAL, {"userid": "lizk", "name": "李科长", "roles": ["reviewer"]}]
    settings = stack_settings(database_url, {"staff": staff}, proofreading=True)
    async with running_stack(settings, clock) as stack:
        await say(stack, "wangxm", f"/submit 关于全市防汛工作的重要通知\n{META}重要：是\n正文")
        await tap(stack, "wangxm", "同意")  # 一审
        await tap(stack, "wangxm", "校对无误")  # 一校 读校
        await say(stack, "zhaoli", "/proof 1 有修改 第二段错字已改")
        await say(stack, "zhangkz", "/cosign 1 lizk 涉及水文数据，请李科长会签")  # 联审 at 二审
        await tap(stack, "zhangkz", "同意")
        await tap(stack, "lizk", "同意")
        await tap(stack, "sunkz", "校对无误")  # 二校 默读
        await tap(stack, "liuzr", "同意")  # 三审
        await tap(stack, "wangzr", "同意")  # 审签
        await tap(stack, "zhangkz", "校对无误")  # 三校 读校
        await tap(stack, "zhaoli", "校对无误")
        (draft,) = await drafts(stack)
        assert draft.status == "approved"
        await say(stack, "liuzr", "导出 2026-11 台账")
        _, ledger = received_file(stack, "liuzr")
        rows = list(load_workbook(io.BytesIO(ledger)).active.iter_rows(values_only=True))
        header = rows[1]
        steps = [
            (r[header.index("环节")], r[header.index("操作")], r[header.index("操作人")]) for r in rows[2:]
        ]
        assert steps == [
            (None, "投稿", "王小明"),
            ("一审", "同意", "王小明"),
            ("一校（读校）", "校对", "王小明"),
            ("一校（读校）", "校对", "赵丽"),
            ("二审", "加签会签", "张科长"),
            ("二审", "同意", "张科长"),
            ("二审", "同意", "李科长"),
            ("二校（默读）", "校对", "孙科长"),
            ("三审", "同意", "刘主任"),
            ("审签", "同意", "王主任"),
            ("三校（读校）", "校对", "张科长"),
            ("三校（读校）", "校对", "赵丽"),
            (None, "审校完成，可发布", "系统"),
        ]
        await say(stack, "liuzr", "导出 2026-11")
        files = [d for d in stack.sim.inbox("liuzr") if d.msgtype == "file"]
        form = stack.sim.media[files[-1].payload["file"]["media_id"]].content
        sheet = load_workbook(io.BytesIO(form)).active
        remark = next(str(c.value) for c in sheet["P"] if c.value and "稿件1号" in str(c.value))
        assert "重要稿件（主要领导审签）" in remark and "审签 王主任" in remark and "三审 刘主任" in remark
        async with stack.db() as session:
            assert (await verify_audit_log(session=session)).ok


async def test_the_principal_may_read_any_draft_like_the_other_leaders(unit: Stack) -> None:
    """A 主要领导 opens a draft that is not theirs to sign (from the 概况 page or /draft)."""
    await say(unit, "wangxm", f"/submit 普通通知\n{META}本周五下午召开例会。")
    (draft,) = await drafts(unit)
    assert not draft.important
    answer = await say(unit, "wangzr", f"/draft {draft.id}")
    assert "普通通知" in answer and "无权查看" not in answer
