"""End-to-end 三审 through the simulator over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import select

from bot import views
from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.core.errors import UserFacingError
from bot.services import review as review_service
from bot.wecom import dispatcher as dispatcher_module
from storage import drafts_repo
from storage.audit_repo import append_audit, verify_audit_log
from storage.models import AuditEntry, Conversation, DraftVersion, OutboxMessage
from tests.flow import (
    active_card,
    button_key,
    cards,
    decisions,
    drafts,
    forged_tap,
    last_text,
    say,
    tap,
    texts,
)

SUBMISSION = (
    "/submit 关于开展2025年防汛演练的通知\n"
    "来源：本机关制发\n"
    "公开：主动公开\n"
    "平台：政府网站，政务新媒体\n"
    "各有关单位：为提高防汛应急处置能力，定于6月举行防汛演练。"
)


async def test_review_three_stages_end_to_end(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    # the confirmation first, then what it announces: the draft's preview and its 一审 card
    received = [d.msgtype for d in stack.sim.inbox("wangxm")]
    assert received == ["text", "text", "template_card"], received
    confirmation, preview = (d.payload["text"]["content"] for d in stack.sim.inbox("wangxm")[:2])
    assert "已收到投稿" in confirmation and "下一步：一审" in confirmation
    assert preview.startswith("【一审·待审】")
    (draft,) = await drafts(stack)
    assert draft.platforms == "website,newmedia" and draft.source_kind == "own"

    # 一审: the editor's own check (Qinzhou); the other collector holds the card too.
    card = active_card(stack, "wangxm").payload["template_card"]
    assert card["main_title"]["title"].startswith("【一审】")
    fields = {f["keyname"]: f["value"] for f in card["horizontal_content_list"]}
    assert fields["编号"] == str(draft.id) and fields["平台"] == "政府网站，政务新媒体"
    assert "审核要点" in card["quote_area"]["title"]
    assert any("防汛演练" in t for t in texts(stack, "zhaoli"))  # full text reached reviewer
    await tap(stack, "wangxm", "同意")
    assert any("定于6月举行防汛演练" in t for t in texts(stack, "zhangkz")), "the tap sent 二审 the text"
    first_card = stack.sim.card(card["task_id"])
    assert not first_card.is_active_for("zhaoli"), "the card is greyed for every holder"

    # 二审: either 科室负责人 may decide; the other's copy greys out.
    await tap(stack, "zhangkz", "同意")
    assert "二审已同意" in last_text(stack, "wangxm")
    assert all(
        not stack.sim.card(c.payload["template_card"]["task_id"]).is_active_for("sunkz")
        for c in cards(stack, "sunkz")
    )

    # 三审 by the leader: approved, submitter and publisher told.
    await tap(stack, "liuzr", "同意")
    assert "已通过三审" in last_text(stack, "wangxm")
    assert "已通过三审" in last_text(stack, "chenfb")

    rows = await decisions(stack)
    assert [(r.stage, r.reviewer_userid, r.decision) for r in rows] == [
        (1, "wangxm", "approve"),
        (2, "zhangkz", "approve"),
        (3, "liuzr", "approve"),
    ]
    assert all(r.decided_at == stack.clock.now() for r in rows)
    (draft,) = await drafts(stack)
    assert draft.status == "approved" and draft.approved_at is not None


async def test_review_reject_by_card_then_revise(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    other_holders_card = active_card(stack, "sunkz").payload["template_card"]["task_id"]
    await tap(stack, "zhangkz", "不同意")
    assert "请直接回复不同意的理由" in last_text(stack, "zhangkz")
    (draft,) = await drafts(stack)
    assert draft.status == "in_review", "no decision before the reason arrives"

    await say(stack, "zhangkz", "演练时间表述不准确，请核实。")
    notice = last_text(stack, "wangxm")
    assert "二审不同意（张科长）" in notice and "演练时间表述不准确" in notice
    assert not stack.sim.card(other_holders_card).is_active_for("sunkz"), "the other 二审 card greyed"
    (draft,) = await drafts(stack)
    assert draft.status == "rejected"

    await say(stack, "wangxm", f"/revise {draft.id}\n各有关单位：定于7月1日举行防汛演练。")
    assert "第2版" in last_text(stack, "wangxm")
    (draft,) = await drafts(stack)
    assert (draft.version, draft.stage, draft.status) == (2, 1, "in_review")
    new_card = active_card(stack, "wangxm").payload["template_card"]
    assert "第2版" in new_card["main_title"]["desc"]
    await tap(stack, "wangxm", "同意")
    assert "定于7月1日" in texts(stack, "zhangkz")[-1], "二审 reads the revised text (第2版)"
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")
    (draft,) = await drafts(stack)
    assert draft.status == "approved"

    history = [(r.version, r.stage, r.reviewer_userid, r.decision, r.opinion) for r in await decisions(stack)]
    assert history == [
        (1, 1, "wangxm", "approve", ""),
        (1, 2, "zhangkz", "reject", "演练时间表述不准确，请核实。"),
        (2, 1, "wangxm", "approve", ""),
        (2, 2, "zhangkz", "approve", ""),
        (2, 3, "liuzr", "approve", ""),
    ]
    async with stack.db() as session:
        versions = (await session.exec(select(DraftVersion))).all()
        actions = [e.action for e in (await session.exec(select(AuditEntry))).all()]
    assert sorted(v.version for v in versions) == [1, 2]
    assert actions == ["submit", "approve", "reject", "revise", "approve", "approve", "approve", "approved"]


async def test_review_typed_commands_work_without_cards(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    (draft,) = await drafts(stack)
    await say(stack, "wangxm", f"/approve {draft.id} 已自校")
    await say(stack, "zhangkz", f"/reject {draft.id} 缺少附件")
    assert "缺少附件" in last_text(stack, "wangxm")
    rows = await decisions(stack)
    assert [(r.stage, r.decision, r.opinion, r.via) for r in rows] == [
        (1, "approve", "已自校", "command"),
        (2, "reject", "缺少附件", "command"),
    ]


async def test_review_submitter_cannot_decide_later_stages(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    (draft,) = await drafts(stack)
    await tap(stack, "wangxm", "同意")
    await say(stack, "wangxm", f"/approve {draft.id}")
    assert "投稿人不能审核自己稿件的二审" in last_text(stack, "wangxm")
    assert len(await decisions(stack)) == 1


async def test_review_one_person_never_decides_two_stages(stack: Stack) -> None:
    # zhaoli decides 一审 for wangxm's draft, then (were she a reviewer) could not decide 二审.
    await say(stack, "wangxm", SUBMISSION)
    (draft,) = await drafts(stack)
    await tap(stack, "zhaoli", "同意")
    await say(stack, "zhaoli", f"/approve {draft.id}")
    assert "不是" in last_text(stack, "zhaoli") or "其他环节" in last_text(stack, "zhaoli")
    rows = await decisions(stack)
    assert [(r.stage, r.reviewer_userid) for r in rows] == [(1, "zhaoli")]


async def test_review_foreign_and_stale_clicks_change_nothing(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    stage1 = active_card(stack, "wangxm").payload["template_card"]
    await tap(stack, "wangxm", "同意")
    before = await decisions(stack)

    # A forged-but-correctly-signed click on the old 一审 card (e.g. a phone that missed the update).
    await forged_tap(stack, "zhaoli", stage1, "同意")
    assert "卡片已过期" in last_text(stack, "zhaoli")

    # A click by somebody who is not an assignee of the current stage.
    stage2 = active_card(stack, "zhangkz").payload["template_card"]
    await forged_tap(stack, "chenfb", stage2, "同意")
    assert "不是" in last_text(stack, "chenfb") and "二审的审核人" in last_text(stack, "chenfb")
    assert await decisions(stack) == before


async def test_review_concurrent_clicks_only_one_counts(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    first = active_card(stack, "zhangkz")
    second = active_card(stack, "sunkz")
    key_a = first.payload["template_card"]["button_list"][0]["key"]
    key_b = second.payload["template_card"]["button_list"][0]["key"]
    task = first.payload["template_card"]["task_id"]
    results = await asyncio.gather(
        stack.sim.click("zhangkz", task, key_a), stack.sim.click("sunkz", task, key_b)
    )
    assert [r.status for r in results] == [200, 200]
    await stack.drain()
    stage2 = [r for r in await decisions(stack) if r.stage == 2]
    assert len(stage2) == 1
    loser = "sunkz" if stage2[0].reviewer_userid == "zhangkz" else "zhangkz"
    assert "未生效" in last_text(stack, loser)
    (draft,) = await drafts(stack)
    assert draft.stage == 3


async def test_review_resent_callbacks_apply_once(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION, msg_id=777001)
    await say(stack, "wangxm", SUBMISSION, msg_id=777001)  # WeCom's retry of the same message
    assert len(await drafts(stack)) == 1
    await tap(stack, "wangxm", "同意")
    result = await stack.sim.resend_last()
    assert result.status == 200
    await stack.drain()
    assert len(await decisions(stack)) == 1
    (draft,) = await drafts(stack)
    assert draft.stage == 2


async def test_review_a_resent_tap_is_answered_from_memory_and_after_a_restart_from_the_database(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")

    def no_transaction(**_: Any) -> Any:
        raise AssertionError("a re-send of a callback this process applied needs no transaction")

    monkeypatch.setattr(dispatcher_module, "remember_callback", no_transaction)
    assert (await stack.sim.resend_last()).status == 200
    monkeypatch.undo()
    await stack.restart_bot()  # the process's memory is gone: the key in the database answers
    assert (await stack.sim.resend_last()).status == 200
    await stack.drain()
    assert [(d.stage, d.reviewer_userid) for d in await decisions(stack)] == [(1, "wangxm")]
    (draft,) = await drafts(stack)
    assert draft.stage == 2
    assert len(cards(stack, "zhangkz")) == 1, "the 二审 card went out once"


# A handler that refuses (its Chinese answer) and one that crashes (the apology), with what the
# person is told: (failure, answer).
HANDLER_FAILURES = [
    (UserFacingError("此稿件暂不能审核。"), "此稿件暂不能审核。"),
    (RuntimeError("bug"), views.APOLOGY),
]


@pytest.mark.parametrize(("failure", "answer"), HANDLER_FAILURES)
async def test_review_a_handler_that_fails_after_writing_leaves_nothing_but_its_answer(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, failure: Exception, answer: str
) -> None:
    await say(stack, "wangxm", SUBMISSION)
    async with stack.db() as session:
        entries_before = len((await session.exec(select(AuditEntry))).all())

    async def write_then_fail(scope: Any, draft: Any, **_: Any) -> Any:
        await drafts_repo.set_conversation(
            session=scope.session, userid=scope.user, kind="reject_reason", data={}, at=scope.now()
        )
        await append_audit(session=scope.session, at=scope.now(), actor=scope.user, action="approve")
        scope.outbox.send_text(["zhangkz"], "不该送达的通知")
        raise failure

    monkeypatch.setattr(review_service, "decide", write_then_fail)
    await tap(stack, "wangxm", "同意")
    assert last_text(stack, "wangxm") == answer
    assert texts(stack, "zhangkz") == []
    async with stack.db() as session:
        assert await session.get(Conversation, "wangxm") is None
        assert len((await session.exec(select(AuditEntry))).all()) == entries_before
        assert (await verify_audit_log(session=session)).ok
    replies = len(texts(stack, "wangxm"))
    monkeypatch.undo()
    await stack.restart_bot()  # the database's key, not the process's memory, answers the re-send
    assert (await stack.sim.resend_last()).status == 200
    await stack.drain()
    assert len(texts(stack, "wangxm")) == replies, "the answer is not given twice"
    assert await decisions(stack) == []


async def test_review_crash_between_click_and_messages_loses_nothing(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意", deliver=False)  # committed, nothing sent yet
    await stack.restart_bot()  # the process dies before the sender runs
    assert len(await decisions(stack)) == 1
    async with stack.db() as session:
        pending = (await session.exec(select(OutboxMessage).where(OutboxMessage.status == "pending"))).all()
    assert pending, "the implied messages wait in the outbox"
    await stack.drain()
    assert active_card(stack, "zhangkz")  # the 二审 card arrived after the restart
    assert "一审已同意" in last_text(stack, "wangxm")


async def test_the_secrecy_review_states_its_conclusion_and_classified_ends_the_draft(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    card = active_card(stack, "zhangkz").payload["template_card"]
    assert card["main_title"]["title"].endswith("·保密审查")
    assert [b["text"] for b in card["button_list"]] == ["同意（不涉密）", "不同意", "涉密不得公开"]
    await say(stack, "wangxm", "/secret 1 自己认定")  # the submitter does not sign 二审
    assert "投稿人不能审核" in last_text(stack, "wangxm")
    await tap(stack, "zhangkz", "涉密不得公开")
    assert "认定理由" in last_text(stack, "zhangkz")
    await say(stack, "zhangkz", "含未公开的工作部署")
    (draft,) = await drafts(stack)
    assert draft.status == "classified"
    assert "涉密，不得公开" in last_text(stack, "wangxm") and "不能修改后重新送审" in last_text(
        stack, "wangxm"
    )
    assert "涉密" in last_text(stack, "chenfb"), "admins are told"
    rows = await decisions(stack)
    assert [(r.stage, r.decision, r.secrecy) for r in rows] == [
        (1, "approve", ""),
        (2, "reject", "classified"),
    ]
    await say(stack, "chenfb", "/draft 1")
    assert "张科长 二审认定涉密，不得公开（第1版）：含未公开的工作部署" in last_text(stack, "chenfb"), (
        "the record says which stage concluded 涉密, on which version, and why"
    )
    await say(stack, "wangxm", "/revise 1\n改过的正文")
    assert "不能再修改" in last_text(stack, "wangxm")
    assert len(await decisions(stack)) == 2


async def test_approving_at_the_secrecy_stage_records_not_classified(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    assert "保密审查：不涉密" in last_text(stack, "zhangkz")
    await say(stack, "liuzr", "/secret 1 三审不作保密结论")
    assert "保密审查作出" in last_text(stack, "liuzr")
    rows = await decisions(stack)
    assert [(r.stage, r.secrecy) for r in rows] == [(1, ""), (2, "clear")]


async def test_taps_on_different_drafts_commit_side_by_side(
    postgres_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two reviewers approve two different drafts at the same moment: neither waits for the
    other. Each decision stops, inside its open transaction, right after its audit entry is
    added, until both are there: if adding an entry held a lock to the end of its transaction
    (the audit chain's head row), the second could never arrive and the barrier would time out.
    (PostgreSQL only: SQLite has one writer per file, so there writers queue by design.)"""
    barrier = asyncio.Barrier(2)
    real_append = review_service.append_audit

    async def append_then_meet(**fields: Any) -> Any:
        entry = await real_append(**fields)
        if fields["action"] == "approve":
            await asyncio.wait_for(barrier.wait(), 10)
        return entry

    async with running_stack(stack_settings(postgres_url), clock) as stack:
        await say(stack, "wangxm", SUBMISSION)
        await say(stack, "wangxm", SUBMISSION.replace("防汛演练的通知", "消防检查的通知"))
        first, second = [c.payload["template_card"] for c in cards(stack, "wangxm")]
        monkeypatch.setattr(review_service, "append_audit", append_then_meet)
        results = await asyncio.gather(
            *(
                stack.sim.click("wangxm", card["task_id"], button_key(card, "同意"))
                for card in (first, second)
            )
        )
        assert [r.status for r in results] == [200, 200]
        assert barrier.n_waiting == 0 and not barrier.broken
        assert sorted((r.draft_id, r.stage) for r in await decisions(stack)) == [(1, 1), (2, 1)]
        assert [d.stage for d in await drafts(stack)] == [2, 2]
        async with stack.db() as session:
            chain = await verify_audit_log(session=session)
            entries = (await session.exec(select(AuditEntry).order_by(AuditEntry.id))).all()
        assert chain.ok, chain.reason
        approvals = [e for e in entries if e.action == "approve"]
        assert sorted(e.draft_id for e in approvals) == [1, 2]
        decided = {r.draft_id: r.audit_id for r in await decisions(stack)}
        assert decided == {e.draft_id: e.id for e in approvals}, "each decision names its own entry"
