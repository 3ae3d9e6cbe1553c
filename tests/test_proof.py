"""三校 through the simulator: 一校 读校 by two, 二校 默读, 三校 after 签发; signatures, refusals, the record."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import col, select

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from storage.audit_repo import verify_audit_log
from storage.models import AuditEntry, ProofRecord
from tests.flow import active_card, decisions, drafts, forged_tap, last_text, say, tap
from tests.test_review_flow import SUBMISSION


@pytest.fixture
async def proof_stack(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    async with running_stack(stack_settings(database_url, proofreading=True), clock) as running:
        yield running


async def proofs(stack: Stack) -> list[ProofRecord]:
    async with stack.db() as session:
        return list((await session.exec(select(ProofRecord).order_by(col(ProofRecord.id)))).all())


def title_of(stack: Stack, user: str) -> str:
    return str(active_card(stack, user).payload["template_card"]["main_title"]["title"])


async def test_three_reviews_and_three_proofs_in_order_with_named_proofreaders(proof_stack: Stack) -> None:
    stack = proof_stack
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")  # 一审
    assert (
        title_of(stack, "zhaoli") == "【一校】待校对稿件"
        and title_of(stack, "wangxm") == "【一校】待校对稿件"
    )
    assert "已转一校" in last_text(stack, "wangxm")
    await tap(stack, "wangxm", "校对无误")
    assert "读校须两人完成" in last_text(stack, "wangxm")
    assert not [d for d in stack.sim.inbox("zhangkz") if d.msgtype == "template_card"], "二审 waits for 一校"
    await tap(stack, "zhaoli", "有修改")
    assert "改正了哪些内容" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "第一段“防讯”改为“防汛”")
    assert "已记录" in last_text(stack, "zhaoli")
    assert title_of(stack, "zhangkz").startswith("【二审】")
    assert "一校已完成（王小明、赵丽）" in last_text(stack, "wangxm")

    await tap(stack, "zhangkz", "同意")  # 二审
    assert title_of(stack, "sunkz") == "【二校】待校对稿件"
    await tap(stack, "zhangkz", "校对无误")  # 二校, 默读: one proofreader
    assert title_of(stack, "liuzr").startswith("【三审】")
    await tap(stack, "liuzr", "同意")  # 三审 (签发)
    (draft,) = await drafts(stack)
    assert (draft.status, draft.step) == ("in_review", "proof"), "三校 comes after 签发, before publishing"
    await tap(stack, "sunkz", "校对无误")
    await tap(stack, "wangxm", "校对无误")
    (draft,) = await drafts(stack)
    assert draft.status == "approved"
    assert "已通过三审三校" in last_text(stack, "chenfb")

    rows = await proofs(stack)
    assert [(r.proof_name, r.method, r.proofreader_name, r.result) for r in rows] == [
        ("一校", "读校", "王小明", "passed"),
        ("一校", "读校", "赵丽", "changed"),
        ("二校", "默读", "张科长", "passed"),
        ("三校", "读校", "孙科长", "passed"),
        ("三校", "读校", "王小明", "passed"),
    ]
    assert rows[1].note == "第一段“防讯”改为“防汛”" and all(r.at == stack.clock.now() for r in rows)
    assert [(d.stage, d.reviewer_userid) for d in await decisions(stack)] == [
        (1, "wangxm"),
        (2, "zhangkz"),
        (3, "liuzr"),
    ]
    async with stack.db() as session:
        actions = [
            e.action for e in (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
        ]
        verified = await verify_audit_log(session=session)
    assert actions.count("proof") == 5 and actions[-1] == "approved"
    assert verified.ok


async def test_proof_refusals_change_nothing_and_say_why(proof_stack: Stack) -> None:
    stack = proof_stack
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    card = active_card(stack, "zhaoli").payload["template_card"]
    await forged_tap(stack, "liuzr", card, "校对无误")  # a leader is no 一校 proofreader
    assert "不是" in last_text(stack, "liuzr") and "校对人" in last_text(stack, "liuzr")
    await say(stack, "zhangkz", "/approve 1")  # 二审 before 一校 is done
    assert "正在一校" in last_text(stack, "zhangkz")
    await tap(stack, "wangxm", "校对无误")
    await say(stack, "wangxm", "/proof 1 无误")  # signing twice
    assert "已签署过" in last_text(stack, "wangxm")
    await say(stack, "zhaoli", "/proof 1 有修改")  # 有修改 needs the corrections
    assert "改正了哪些内容" in last_text(stack, "zhaoli")
    assert [(r.proofreader_userid, r.result) for r in await proofs(stack)] == [("wangxm", "passed")]
    (draft,) = await drafts(stack)
    assert (draft.stage, draft.step) == (1, "proof")
    await say(stack, "zhaoli", "/proof 1 有修改 标点已改正")
    (draft,) = await drafts(stack)
    assert (draft.stage, draft.step) == (2, "review")


async def test_a_chain_without_proofreading_says_so_and_skips_it(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    card = active_card(stack, "wangxm").payload["template_card"]
    assert card["source"]["desc"] == "审校助手·三审", "a chain with 三校 switched off claims only 三审"
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")
    assert "已通过三审，可以发布" in last_text(stack, "wangxm")
    assert await proofs(stack) == []


async def test_a_proofreader_signs_on_the_page(proof_stack: Stack) -> None:
    from bot.cli.browser import Phone

    stack = proof_stack
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    async with Phone(stack, "zhaoli") as phone:
        page = await phone.get("/app/drafts/1/")
        assert "一校（读校）" in page.plain and "两人均须签署" in page.plain
        fields = [(n, v) for n, v in phone.fields(page) if n in ("csrf", "version", "round", "stage")]
        bare = await phone.post_form("/app/drafts/1/proof", [*fields, ("result", "changed")])
        assert "改正了哪些内容" in bare.plain
        signed = await phone.post_form(
            "/app/drafts/1/proof", [*fields, ("result", "changed"), ("note", "删去重复的“的”")]
        )
        assert "尚待" in signed.plain and "王小明" in signed.plain
    async with Phone(stack, "liuzr") as leader:
        page = await leader.get("/app/drafts/1/")
        assert 'action="proof"' not in page.text and "不是" in page.plain
        assert "赵丽 一校（读校）有修改：删去重复的“的”" in page.plain
    assert [(r.proofreader_userid, r.via) for r in await proofs(stack)] == [("zhaoli", "page")]


async def test_the_ledger_lists_every_proof_signature_by_name(proof_stack: Stack) -> None:
    import io

    from openpyxl import load_workbook

    from tests.test_export import received_file

    stack = proof_stack
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    await tap(stack, "wangxm", "校对无误")
    await say(stack, "zhaoli", "/proof 1 有修改 标点已改正")
    await say(stack, "liuzr", "导出 2026-11-01 2026-11-30 台账")
    _, content = received_file(stack, "liuzr")
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    header = rows[1]
    proof_rows = [r for r in rows[2:] if r[header.index("操作")] == "校对"]
    assert [
        (
            r[header.index("环节")],
            r[header.index("操作人")],
            r[header.index("意见或理由")],
            r[header.index("方式")],
        )
        for r in proof_rows
    ] == [
        ("一校（读校）", "王小明", "校对无误", "卡片"),
        ("一校（读校）", "赵丽", "有修改：标点已改正", "命令"),
    ]


async def test_a_revision_or_a_return_during_a_proof_starts_over_at_a_review(proof_stack: Stack) -> None:
    stack = proof_stack
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")  # 一审 → 一校 open
    await say(stack, "wangxm", "/revise 1\n新的正文。")
    (draft,) = await drafts(stack)
    assert (draft.version, draft.stage, draft.step) == (2, 1, "review"), "version 2 needs its own 一审"
    await tap(stack, "wangxm", "同意")
    assert title_of(stack, "zhaoli") == "【一校】待校对稿件"
    await say(stack, "zhangkz", "/transfer 1 sunkz 出差")  # nothing to hand over while 一校 is open
    assert "正在一校" in last_text(stack, "zhangkz")


async def test_a_proofreader_of_a_later_step_may_open_the_draft(proof_stack: Stack) -> None:
    from bot.cli.browser import Phone

    stack = proof_stack
    await say(stack, "wangxm", SUBMISSION)
    for user, label in (
        ("wangxm", "同意"),
        ("wangxm", "校对无误"),
        ("zhaoli", "校对无误"),
        ("zhangkz", "同意"),
        ("zhangkz", "校对无误"),
        ("liuzr", "同意"),
    ):
        await tap(stack, user, label)
    async with Phone(stack, "sunkz") as phone:  # decided nothing, but holds the 三校 card
        page = await phone.get("/app/drafts/1/")
    assert page.status == 200 and "三校（读校）" in page.plain
    await say(stack, "sunkz", "/remind 1")
    assert "只有投稿人或管理员" in last_text(stack, "sunkz")
    await say(stack, "wangxm", "/remind 1")
    assert "三校" in last_text(stack, "zhangkz") and "/proof 1 无误" in last_text(stack, "zhangkz")
