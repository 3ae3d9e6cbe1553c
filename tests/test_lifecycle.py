"""撤回, 转审, 退回, 抄送, 催办 and 代理 through the simulator: success, bad arguments, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from bot.cli.stack import DEMO_STAFF, Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.wecom.outbox import Outbox
from storage import direct, drafts_repo
from storage.audit_repo import append_audit, verify_audit_log
from storage.models import ApprovalCard, AuditEntry, Delegation, OutboxMessage, StageAssignment, StageDecision
from tests.flow import active_card, decisions, drafts, last_text, say, tap, texts
from tests.test_review_flow import SUBMISSION

# A unit with a third 科长 and a 副主任: people with the right roles to stand in, who are not
# already assignees (二审 and 三审 name their people explicitly here).
STAND_INS = [
    {"userid": "lizk", "name": "李科长", "roles": ["reviewer"]},
    {"userid": "lifz", "name": "李副主任", "roles": ["leader"]},
]
EXPLICIT_STAGES = [
    {"name": "一审", "assignees": ["@submitter", "role:collector"]},
    {"name": "二审", "assignees": ["zhangkz", "sunkz"]},
    {"name": "三审", "assignees": ["liuzr"]},
]


@pytest.fixture
async def wide_stack(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    settings = stack_settings(
        database_url,
        {
            "staff": [*DEMO_STAFF, *STAND_INS],
            "chains": [
                {"category": c, "stages": EXPLICIT_STAGES, "proofreading": False}
                for c in ("issued", "reprint", "reported")
            ],
        },
    )
    async with running_stack(settings, clock) as running:
        yield running


async def submitted(stack: Stack) -> int:
    await say(stack, "wangxm", SUBMISSION)
    (draft,) = await drafts(stack)
    assert draft.id is not None
    return draft.id


async def at_stage_two(stack: Stack) -> int:
    number = await submitted(stack)
    await tap(stack, "wangxm", "同意")
    return number


async def audit_actions(stack: Stack) -> list[str]:
    async with stack.db() as session:
        rows = await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))
        return [r.action for r in rows.all()]


async def test_withdraw_by_submitter_greys_cards_and_tells_reviewers(stack: Stack) -> None:
    number = await at_stage_two(stack)
    card = active_card(stack, "zhangkz").payload["template_card"]
    await say(stack, "wangxm", f"/withdraw {number} 标题需调整")
    assert "已撤回" in last_text(stack, "wangxm")
    assert "无需再审核" in last_text(stack, "zhangkz")
    assert not stack.sim.card(card["task_id"]).is_active_for("zhangkz")
    (draft,) = await drafts(stack)
    assert draft.status == "withdrawn"
    await say(stack, "zhangkz", f"/approve {number}")
    assert "不在审核中" in last_text(stack, "zhangkz")
    assert len(await decisions(stack)) == 1
    assert (await audit_actions(stack))[-1] == "withdraw"


async def test_withdraw_refused_for_others_and_after_approval(stack: Stack) -> None:
    number = await at_stage_two(stack)
    await say(stack, "zhaoli", f"/withdraw {number}")
    assert "只有投稿人或管理员" in last_text(stack, "zhaoli")
    await say(stack, "wangxm", "/withdraw abc")
    assert "用法：/withdraw" in last_text(stack, "wangxm")
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")
    await say(stack, "wangxm", f"/withdraw {number}")
    assert "不能撤回" in last_text(stack, "wangxm")
    (draft,) = await drafts(stack)
    assert draft.status == "approved"


async def test_transfer_moves_the_stage_and_records_the_reason(wide_stack: Stack) -> None:
    stack = wide_stack
    number = await at_stage_two(stack)
    old = active_card(stack, "zhangkz").payload["template_card"]["task_id"]
    await say(stack, "zhangkz", f"/transfer {number} lizk 本人出差")
    # zhangkz hands his part of 二审 to lizk; the old cards are greyed for every holder.
    assert not stack.sim.card(old).is_active_for("sunkz")
    assert "转给您审核" in texts(stack, "lizk")[-1]
    assert "转给李科长审核" in last_text(stack, "wangxm")
    await say(stack, "zhangkz", f"/approve {number}")
    assert "不是" in last_text(stack, "zhangkz")
    await tap(stack, "lizk", "同意")
    await tap(stack, "liuzr", "同意")
    rows = await decisions(stack)
    assert [(r.stage, r.reviewer_userid) for r in rows] == [(1, "wangxm"), (2, "lizk"), (3, "liuzr")]
    assert (await drafts(stack))[0].status == "approved"
    assert "transfer" in await audit_actions(stack)
    await say(stack, "wangxm", f"/draft {number}")
    assert "转审 二审给李科长、孙科长：本人出差" in last_text(stack, "wangxm")


async def test_transfer_refusals_and_bad_arguments(stack: Stack) -> None:
    number = await at_stage_two(stack)
    await say(stack, "zhangkz", f"/transfer {number} sunkz")
    assert "须写明理由" in last_text(stack, "zhangkz")
    await say(stack, "zhangkz", f"/transfer {number} nobody 出差")
    assert "人员名单中没有 nobody" in last_text(stack, "zhangkz")
    await say(stack, "zhangkz", f"/transfer {number} wangxm 出差")
    assert "投稿人不能审核" in last_text(stack, "zhangkz")
    await say(stack, "zhaoli", f"/transfer {number} liuzr 出差")
    assert "只有" in last_text(stack, "zhaoli") and "审核人或管理员" in last_text(stack, "zhaoli")
    await say(stack, "zhangkz", "/transfer")
    assert "用法：/transfer" in last_text(stack, "zhangkz")
    assert "transfer" not in await audit_actions(stack)


async def test_return_to_an_earlier_stage_starts_a_new_round(stack: Stack) -> None:
    number = await at_stage_two(stack)
    await tap(stack, "zhangkz", "同意")
    await say(stack, "liuzr", f"/return {number} 二审 数据口径需再核")
    assert "退回二审" in last_text(stack, "wangxm")
    (draft,) = await drafts(stack)
    assert (draft.stage, draft.round, draft.status) == (2, 2, "in_review")
    # The same 二审 reviewer may decide again in the new round; the old decision stays on record.
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")
    rows = await decisions(stack)
    assert [(r.stage, r.round, r.reviewer_userid) for r in rows] == [
        (1, 1, "wangxm"),
        (2, 1, "zhangkz"),
        (2, 2, "zhangkz"),
        (3, 2, "liuzr"),
    ]
    assert (await drafts(stack))[0].status == "approved"


async def test_return_refusals(stack: Stack) -> None:
    number = await at_stage_two(stack)
    await say(stack, "zhangkz", f"/return {number} 三审 理由")
    assert "之前的环节" in last_text(stack, "zhangkz")
    await say(stack, "zhangkz", f"/return {number} 九审 理由")
    assert "用法：/return" in last_text(stack, "zhangkz")
    await say(stack, "zhangkz", f"/return {number} 一审")
    assert "须写明理由" in last_text(stack, "zhangkz")
    await say(stack, "chenfb", f"/return {number} 一审 理由")  # admin may
    (draft,) = await drafts(stack)
    assert (draft.stage, draft.round) == (1, 2)
    await say(stack, "zhaoli", f"/return {number} 一审 理由")
    assert "之前的环节" in last_text(stack, "zhaoli")


async def test_cc_notifies_now_and_on_approval(stack: Stack) -> None:
    number = await at_stage_two(stack)
    await say(stack, "wangxm", f"/cc {number} zhaoli")
    assert "【抄送】" in last_text(stack, "zhaoli")
    await say(stack, "wangxm", f"/cc {number} zhaoli")
    assert "已在抄送名单中" in last_text(stack, "wangxm")
    await say(stack, "sunkz", f"/cc {number} zhaoli")  # sunkz is a current 二审 assignee
    assert "已在抄送名单中" in last_text(stack, "sunkz")
    await say(stack, "liuzr", f"/cc {number} zhaoli")
    assert "只有投稿人、当前审核人或管理员" in last_text(stack, "liuzr")
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")
    assert "已通过三审" in last_text(stack, "zhaoli")


async def test_remind_is_rate_limited(stack: Stack) -> None:
    number = await at_stage_two(stack)
    await say(stack, "wangxm", f"/remind {number}")
    assert "【催办】" in last_text(stack, "zhangkz") and "【催办】" in last_text(stack, "sunkz")
    await say(stack, "wangxm", f"/remind {number}")
    assert "刚刚已催办过" in last_text(stack, "wangxm")
    assert sum("【催办】" in t for t in texts(stack, "zhangkz")) == 1
    stack.clock.advance(minutes=121)
    await say(stack, "wangxm", f"/remind {number}")
    assert sum("【催办】" in t for t in texts(stack, "zhangkz")) == 2
    await say(stack, "zhaoli", f"/remind {number}")
    assert "只有投稿人或管理员" in last_text(stack, "zhaoli")


async def test_away_delegate_decides_with_both_names_on_record(wide_stack: Stack) -> None:
    stack = wide_stack
    number = await submitted(stack)
    await say(stack, "liuzr", "/away 至 2026-11-30 代理 lifz")
    assert "由李副主任代理" in last_text(stack, "liuzr")
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    # 三审's card goes to the delegate; liuzr holds none.
    await tap(stack, "lifz", "同意")
    rows = await decisions(stack)
    assert (rows[-1].stage, rows[-1].reviewer_userid, rows[-1].on_behalf_of) == (3, "lifz", "liuzr")
    await say(stack, "lifz", f"/draft {number}")
    assert "代理刘主任" in last_text(stack, "lifz")


async def test_away_hands_over_waiting_work_and_ends(wide_stack: Stack) -> None:
    stack = wide_stack
    number = await at_stage_two(stack)
    await tap(stack, "zhangkz", "同意")
    await say(stack, "liuzr", "/away 2026-11-25 lifz")
    assert "1 件待审稿件" in last_text(stack, "liuzr")
    assert active_card(stack, "lifz")
    await say(stack, "liuzr", "/away 取消")
    assert "已取消代理" in last_text(stack, "liuzr")
    await say(stack, "liuzr", f"/approve {number}")
    assert (await drafts(stack))[0].status == "approved"


async def test_away_bad_arguments(wide_stack: Stack) -> None:
    stack = wide_stack
    await say(stack, "liuzr", "/away 明天 lifz")
    assert "用法：/away" in last_text(stack, "liuzr")
    await say(stack, "liuzr", "/away 至 2026-11-01 代理 lifz")
    assert "结束日期" in last_text(stack, "liuzr")
    await say(stack, "liuzr", "/away 至 2026-12-01 代理 liuzr")
    assert "不能是您自己" in last_text(stack, "liuzr")
    await say(stack, "liuzr", "/away 取消")
    assert "没有设置代理" in last_text(stack, "liuzr")


async def test_nobody_without_the_stage_role_gets_it_by_transfer_or_delegation(wide_stack: Stack) -> None:
    stack = wide_stack
    number = await at_stage_two(stack)
    await say(stack, "zhangkz", f"/transfer {number} zhaoli 本人出差")  # a collector cannot sign 二审
    assert "赵丽没有二审的签署资格（需要：科室负责人）" in last_text(stack, "zhangkz")
    await tap(stack, "zhangkz", "同意")
    await say(stack, "chenfb", f"/transfer {number} chenfb 我来签")  # an admin reassigning 三审 to himself
    assert "陈发布没有三审的签署资格（需要：单位领导）" in last_text(stack, "chenfb")
    await say(stack, "chenfb", f"/approve {number}")
    assert "不是" in last_text(stack, "chenfb")
    await say(stack, "liuzr", "/away 至 2026-11-30 代理 chenfb")  # a leader's stand-in must be a leader
    assert "缺少：单位领导" in last_text(stack, "liuzr")
    await say(stack, "zhangkz", "/away 至 2026-11-30 代理 lifz")  # a 科长's stand-in must be a 科长
    assert "缺少：科室负责人" in last_text(stack, "zhangkz")
    actions = await audit_actions(stack)
    assert "transfer" not in actions and "away" not in actions
    assert active_card(stack, "liuzr"), "三审 stays with the leader"
    rows = await decisions(stack)
    assert [(r.stage, r.reviewer_userid) for r in rows] == [(1, "wangxm"), (2, "zhangkz")]


async def test_cosign_makes_the_stage_a_joint_review_everyone_added_must_approve(wide_stack: Stack) -> None:
    stack = wide_stack
    number = await at_stage_two(stack)
    reply = await say(stack, "zhangkz", f"/cosign {number} lizk 涉及专业数据，请李科长会签")
    assert "须张科长、李科长全部同意" in reply
    assert "请您联审" in texts(stack, "lizk")[-1]
    assert "会签" in active_card(stack, "lizk").payload["template_card"]["main_title"]["title"]
    await tap(stack, "zhangkz", "同意")
    assert "会签尚待：李科长" in last_text(stack, "zhangkz")
    assert not [d for d in stack.sim.inbox("liuzr") if d.msgtype == "template_card"], "三审 waits for 李科长"
    await tap(stack, "lizk", "同意")
    assert active_card(stack, "liuzr")
    rows = await decisions(stack)
    assert [(r.stage, r.reviewer_userid) for r in rows] == [(1, "wangxm"), (2, "zhangkz"), (2, "lizk")]
    async with stack.db() as session:
        entry = (await session.exec(select(AuditEntry).where(AuditEntry.action == "cosign"))).one()
    assert entry.details["to"] == ["lizk"] and entry.details["reason"] == "涉及专业数据，请李科长会签"


async def test_cosign_refusals_change_nothing(wide_stack: Stack) -> None:
    stack = wide_stack
    number = await at_stage_two(stack)
    await say(stack, "zhangkz", f"/cosign {number} lizk")
    assert "用法" in last_text(stack, "zhangkz")
    await say(stack, "zhangkz", f"/cosign {number} zhaoli 请会签")  # a collector cannot sign 二审
    assert "赵丽没有二审的签署资格" in last_text(stack, "zhangkz")
    await say(stack, "liuzr", f"/cosign {number} lizk 请会签")  # not this stage's reviewer, not an admin
    assert "只有" in last_text(stack, "liuzr")
    assert "cosign" not in await audit_actions(stack)


async def test_who_is_away_is_read_once_a_transaction_and_a_change_in_it_is_seen(stack: Stack) -> None:
    """A tap asks who is away for its stage and the next, and taps applied together share a
    transaction: one read serves them all, until the transaction itself changes a delegation."""
    now = stack.clock.now()
    reads: list[str] = []
    async with stack.db() as session, session.begin():
        session.add(
            Delegation(userid="zhangkz", delegate="sunkz", until=now + timedelta(days=2), created_at=now)
        )
        await session.flush()

        async def away(at_hours: float = 0) -> dict[str, str]:
            return await drafts_repo.active_delegates(
                session=session, userids=["zhangkz", "liuzr"], at=now + timedelta(hours=at_hours)
            )

        with direct.observing(lambda sql: reads.append(sql) if "delegation" in sql.lower() else None):
            assert await away() == {"zhangkz": "sunkz"}
            assert await away(1) == {"zhangkz": "sunkz"}
            assert len(reads) == 1, "the second ask is answered from the first read"
            assert await away(72) == {}, "a delegation that has ended by then does not count"
            session.add(
                Delegation(userid="liuzr", delegate="chenfb", until=now + timedelta(days=1), created_at=now)
            )
            assert await away(1) == {"zhangkz": "sunkz", "liuzr": "chenfb"}, "added in this transaction: seen"
            await session.delete(await session.get(Delegation, "zhangkz"))
            assert await away(1) == {"liuzr": "chenfb"}, "removed in this transaction: gone"
            assert await away(-1) == {"liuzr": "chenfb"}, "an earlier moment is read again"
    assert len(reads) == 4


async def test_a_versions_decisions_and_its_rounds_assignments_are_one_read_and_a_transfer_still_counts(
    stack: Stack,
) -> None:
    """A decision reads the version's decisions and whether its round has a 转审/加签 in one
    statement: with none, who holds a stage needs no read of its own; with one (stored before or
    added in the transaction), that one is who holds the stage."""
    number = await at_stage_two(stack)  # wangxm's 一审 同意 is recorded
    now = stack.clock.now()
    reads: list[str] = []

    def counted(sql: str) -> None:
        if "stagedecision" in sql.lower() or "stageassignment" in sql.lower():
            reads.append(sql)

    async def holders(session: Any, stage: int, round_: int = 1) -> str | None:
        found = await drafts_repo.stage_assignment(
            session=session, draft_id=number, version=1, round_=round_, stage=stage
        )
        return found.assignees if found is not None else None

    async with stack.db() as session, session.begin():
        with direct.observing(counted):
            decided = await drafts_repo.version_decisions(
                session=session, draft_id=number, version=1, round_=1
            )
            assert decided == [(1, "wangxm", "approve", 1)]
            assert await holders(session, 2) is None
            assert len(reads) == 1, "no 转审 in the round: known from the decisions' read"
            session.add(
                StageAssignment(
                    draft_id=number, version=1, round=1, stage=2, assignees="liuzr", by="zhangkz", at=now
                )
            )
            assert await holders(session, 2) == "liuzr", "added in this transaction: seen"
    reads.clear()
    async with stack.db() as session, session.begin():
        with direct.observing(counted):
            decided = await drafts_repo.version_decisions(
                session=session, draft_id=number, version=1, round_=1
            )
            assert decided == [(1, "wangxm", "approve", 1)], "a 转审 is not a decision"
            assert await holders(session, 2) == "liuzr", "stored before: the round's 转审 is read and counts"
            assert await holders(session, 1) is None
            await drafts_repo.version_decisions(session=session, draft_id=number, version=1, round_=2)
            assert await holders(session, 2, round_=2) is None, "another round has none"
    assert len(reads) == 3


async def open_card(stack: Stack, number: int) -> int:
    async with stack.db() as session:
        found = await session.exec(
            select(ApprovalCard.id).where(
                ApprovalCard.draft_id == number, col(ApprovalCard.closed).is_(False)
            )
        )
        (card_id,) = found.all()
    assert card_id is not None
    return card_id


def stage_two_decision(number: int, reviewer: str, at: Any) -> StageDecision:
    return direct.record(
        StageDecision,
        draft_id=number,
        version=1,
        round=1,
        stage=2,
        stage_name="二审",
        slot="*",
        reviewer_userid=reviewer,
        reviewer_name=reviewer,
        decision="approve",
        decided_at=at,
        via="card",
    )


async def test_a_tap_reads_its_card_draft_decisions_and_transfers_in_one_statement_and_a_new_decision_again(
    stack: Stack,
) -> None:
    """The card, its draft (locked), the version's decisions and whether the round has a 转审
    are one read; a decision this transaction adds is read again, not assumed."""
    number = await at_stage_two(stack)
    card_id = await open_card(stack, number)
    statements: list[str] = []
    async with stack.db() as session, session.begin():
        with direct.observing(statements.append):
            found = await drafts_repo.card_with_draft(session=session, card_id=card_id)
            assert found is not None
            card, draft = found
            assert (card.id, draft.id, draft.stage, card.stage) == (card_id, number, 2, 2)
            decided = await drafts_repo.version_decisions(
                session=session, draft_id=number, version=1, round_=1
            )
            assert decided == [(1, "wangxm", "approve", 1)]
            assignment = await drafts_repo.stage_assignment(
                session=session, draft_id=number, version=1, round_=1, stage=2
            )
            assert assignment is None
            assert len(statements) == 1, statements
            added = stage_two_decision(number, "zhangkz", stack.clock.now())
            assert await drafts_repo.add_unless_taken(session=session, row=added)
            decided = await drafts_repo.version_decisions(
                session=session, draft_id=number, version=1, round_=1
            )
            assert decided == [(1, "wangxm", "approve", 1), (2, "zhangkz", "approve", 1)]
        await session.rollback()
    statements.clear()
    async with stack.db() as session, session.begin():
        session.add(
            StageAssignment(
                draft_id=number,
                version=1,
                round=1,
                stage=2,
                assignees="liuzr",
                by="zhangkz",
                at=stack.clock.now(),
            )
        )
        await session.flush()
        with direct.observing(statements.append):
            assert await drafts_repo.card_with_draft(session=session, card_id=card_id) is not None
            assignment = await drafts_repo.stage_assignment(
                session=session, draft_id=number, version=1, round_=1, stage=2
            )
        assert assignment is not None and assignment.assignees == "liuzr", "a 转审 in the round: read"
        assert len(statements) == 2


async def test_a_groups_cards_are_read_ahead_in_one_statement_and_one_whose_draft_changed_is_read_again(
    stack: Stack,
) -> None:
    """Taps applied together: on PostgreSQL their cards and drafts are read in one statement
    (SQLite reads each with its tap: no round trip to save). A card whose draft this
    transaction changes after that read is read again when its tap asks: what it sees then
    includes the change."""
    numbers = []
    for _ in range(2):
        await say(stack, "wangxm", SUBMISSION)
        await tap(stack, "wangxm", "同意")
        numbers.append(max(d.id for d in await drafts(stack) if d.id is not None))
    first, second = numbers
    cards = [await open_card(stack, first), await open_card(stack, second)]
    postgres = stack.db.kw["bind"].dialect.name == "postgresql"
    statements: list[str] = []
    async with stack.db() as session, session.begin():
        with direct.observing(statements.append):
            await drafts_repo.read_cards_ahead(session=session, card_ids=cards, at=stack.clock.now())
            for card_id, number in zip(cards, numbers, strict=True):
                found = await drafts_repo.card_with_draft(session=session, card_id=card_id)
                assert found is not None and (found[0].id, found[1].id, found[1].stage) == (
                    card_id,
                    number,
                    2,
                )
        assert len(statements) == (1 if postgres else 2), statements
        await session.rollback()
    async with stack.db() as session, session.begin():
        await drafts_repo.read_cards_ahead(session=session, card_ids=cards, at=stack.clock.now())
        added = stage_two_decision(second, "zhangkz", stack.clock.now())
        assert await drafts_repo.add_unless_taken(session=session, row=added)
        found = await drafts_repo.card_with_draft(session=session, card_id=cards[1])
        assert found is not None
        decided = await drafts_repo.version_decisions(session=session, draft_id=second, version=1, round_=1)
        assert decided == [(1, "wangxm", "approve", 1), (2, "zhangkz", "approve", 1)]
        refused = stage_two_decision(second, "zhangkz", stack.clock.now())
        assert not await drafts_repo.add_unless_taken(session=session, row=refused), "his place is taken"


async def test_a_tap_waiting_for_its_draft_counts_the_decision_committed_meanwhile(
    postgres_url: str, clock: FrozenClock
) -> None:
    """PostgreSQL: a tap whose draft is locked by another decision waits, and once the lock is
    granted the decisions it reads include the one committed meanwhile (a read in the snapshot
    taken before the wait would miss it, and a 会签 could then never complete)."""
    async with running_stack(stack_settings(postgres_url), clock) as stack:
        number = await at_stage_two(stack)
        card_id = await open_card(stack, number)
        async with stack.db() as first, first.begin():
            assert await drafts_repo.card_with_draft(session=first, card_id=card_id) is not None
            added = stage_two_decision(number, "zhangkz", clock.now())
            assert await drafts_repo.add_unless_taken(session=first, row=added)

            async def second_tap() -> list[tuple[int, str, str, int]]:
                async with stack.db() as second, second.begin():
                    assert await drafts_repo.card_with_draft(session=second, card_id=card_id) is not None
                    return await drafts_repo.version_decisions(
                        session=second, draft_id=number, version=1, round_=1
                    )

            waiting = asyncio.create_task(second_tap())
            await until_waiting_for_a_lock(stack)
            assert not waiting.done()
        assert await waiting == [(1, "wangxm", "approve", 1), (2, "zhangkz", "approve", 1)]


async def test_cards_closed_as_the_last_write_before_the_commit_are_still_greyed(stack: Stack) -> None:
    """Closing a draft's cards tells which it closed once it has run: on PostgreSQL, when no
    later write carries it, at the commit — before the commit adds the outbox's rows, so the
    greying it queues is sent like any other message."""
    number = await at_stage_two(stack)
    card_id = await open_card(stack, number)
    async with stack.db() as session, session.begin():
        assert await drafts_repo.get_draft(session=session, draft_id=number, lock=True) is not None
        outbox = Outbox(session, stack.clock)

        def grey(closed: list[tuple[int, str | None]]) -> None:
            for closed_id, code in closed:
                outbox.update_card(code or "没有", replace_name="已关闭", card_id=closed_id)

        await drafts_repo.close_open_cards(session=session, draft_id=number, then=grey)
    async with stack.db() as session:
        greyed = await session.exec(
            select(OutboxMessage.card_id).where(
                OutboxMessage.op == "update_card", OutboxMessage.card_id == card_id
            )
        )
        assert greyed.all() == [card_id]


async def test_what_a_commit_writes_goes_in_one_statement_on_postgresql(stack: Stack) -> None:
    """The commit's own writes — audit entries, the head moved, the decision bound to its
    entry, the outbox rows, a conversation ended — follow the head's lock in one statement on
    PostgreSQL (SQLite runs them as before); the chain still verifies and every row is there."""
    postgres = stack.settings.database.url.startswith("postgresql")
    number = await at_stage_two(stack)
    now = stack.clock.now()
    async with stack.db() as session, session.begin():
        await drafts_repo.set_conversation(
            session=session, userid="sunkz", kind="reject_reason", data={}, at=now
        )
    sent: list[str] = []
    async with stack.db() as session:
        transaction = await session.begin()
        decision = stage_two_decision(number, "zhangkz", now)
        assert await drafts_repo.add_unless_taken(session=session, row=decision)
        entry = await append_audit(
            session=session, at=now, actor="zhangkz", action="approve", draft_id=number, bind=decision
        )
        await append_audit(session=session, at=now, actor="system", action="note", draft_id=number)
        Outbox(session, stack.clock).send_text(["zhangkz"], "已记录")
        Outbox(session, stack.clock).send_text(["zhangkz"], "再记录")
        await drafts_repo.clear_conversation(session=session, userid="sunkz")
        with direct.observing(sent.append):
            await transaction.commit()
    if postgres:
        assert len(sent) == 2, sent
        assert sent[0].startswith("SELECT audithead.last_id")
        for write in ("UPDATE stagedecision", "INSERT INTO auditentry", "UPDATE audithead"):
            assert write in sent[1]
        assert "INSERT INTO outboxmessage" in sent[1] and "DELETE FROM conversation" in sent[1]
    else:
        assert len(sent) >= 6
    async with stack.db() as session:
        assert (await verify_audit_log(session=session)).ok
        stored = await session.get(StageDecision, decision.id)
        assert stored is not None and stored.audit_id == entry.id
        actions = (
            await session.exec(
                select(AuditEntry.action).where(AuditEntry.id >= entry.id).order_by(col(AuditEntry.id))
            )
        ).all()
        assert actions == ["approve", "note"]
        assert await drafts_repo.get_conversation(session=session, userid="sunkz") is None
        queued = (
            await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.recipients == "zhangkz", OutboxMessage.id > 0)
                .order_by(col(OutboxMessage.id))
            )
        ).all()
        ours = [m for m in queued if m.payload.get("text", {}).get("content") in ("已记录", "再记录")]
        assert [m.payload["text"]["content"] for m in ours] == ["已记录", "再记录"], "in the order queued"
        for message in ours:  # every column a row does not name takes its default
            assert (message.status, message.attempts, message.claim_token, message.last_error) == (
                "pending",
                0,
                "",
                "",
            )
            assert (message.dup_check, message.body_hash, message.msgid) == (False, "", "")


def own_slot_decision(number: int, reviewer: str, at: Any) -> StageDecision:
    """A 二审 decision in a 会签's slot of its own (one per reviewer)."""
    decision = stage_two_decision(number, reviewer, at)
    decision.slot = reviewer
    return decision


async def test_decisions_keep_the_order_they_were_made_in_when_a_tap_waited_for_its_draft(
    postgres_url: str, clock: FrozenClock
) -> None:
    """PostgreSQL: a tap draws its decision's id when the draft's lock is granted and writes the
    decision with its next write (here with closing the open cards, at the commit): round trips
    fewer. A decision committed while the tap waited for the lock comes first by id, as in the
    保密审查表."""
    async with running_stack(stack_settings(postgres_url), clock) as stack:
        number = await at_stage_two(stack)
        card_id = await open_card(stack, number)
        async with stack.db() as first, first.begin():
            # a decision made on the draft's page: locked, then recorded (its id drawn then)
            assert await drafts_repo.get_draft(session=first, draft_id=number, lock=True) is not None
            statements: list[str] = []

            closed: list[tuple[int, str | None]] = []

            async def tap_and_close() -> bool:
                with direct.observing(statements.append):
                    async with stack.db() as second, second.begin():
                        assert await drafts_repo.card_with_draft(session=second, card_id=card_id) is not None
                        statements.clear()
                        added = own_slot_decision(number, "liuzr", clock.now())
                        recorded = await drafts_repo.add_unless_taken(session=second, row=added)
                        await drafts_repo.close_open_cards(
                            session=second, draft_id=number, then=closed.extend
                        )
                        assert not closed, "held back: nothing has run yet"
                return recorded

            waiting = asyncio.create_task(tap_and_close())
            await until_waiting_for_a_lock(stack)
            assert await drafts_repo.add_unless_taken(
                session=first, row=own_slot_decision(number, "zhangkz", clock.now())
            )
        assert await waiting
        assert len(statements) == 1, "the decision and the cards' closing went in one statement"
        assert statements[0].startswith("WITH sanshen_held_0 AS (INSERT INTO stagedecision")
        assert "UPDATE approvalcard" in statements[0]
        assert [card for card, _ in closed] == [card_id], "told which cards it closed once it ran"
        async with stack.db() as session:
            listed = await drafts_repo.list_decisions(session=session, draft_id=number)
        assert [d.reviewer_userid for d in listed] == ["wangxm", "zhangkz", "liuzr"]


async def until_waiting_for_a_lock(stack: Stack) -> None:
    """Until some session of the test's database waits for a lock (not a timing)."""
    async with stack.db() as watcher:
        for _ in range(1000):
            waits = await watcher.exec(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
            if waits.scalar_one():
                return
            await asyncio.sleep(0.01)
    raise AssertionError("no session ever waited for a lock")


@pytest.mark.parametrize(
    ("taken_by", "slot_of_the_new_one"),
    [("wangxm", "own"), ("zhangkz", "shared"), ("zhangkz", "own")],
    ids=["the reviewer decided this round", "a shared slot taken", "the same reviewer's slot"],
)
async def test_a_tap_whose_place_the_lock_time_read_shows_taken_changes_nothing(
    stack: Stack, taken_by: str, slot_of_the_new_one: str
) -> None:
    """A decision the decisions read with the lock show would break a unique constraint is
    answered "taken" at once, and the transaction still commits (not held back to fail later)."""
    number = await at_stage_two(stack)  # wangxm decided the 一审 of round 1
    card_id = await open_card(stack, number)
    if taken_by != "wangxm":
        async with stack.db() as session, session.begin():
            assert await drafts_repo.add_unless_taken(
                session=session, row=stage_two_decision(number, taken_by, stack.clock.now())
            )
    async with stack.db() as session, session.begin():
        assert await drafts_repo.card_with_draft(session=session, card_id=card_id) is not None
        reviewer = taken_by if slot_of_the_new_one == "own" else "liuzr"
        new = (own_slot_decision if slot_of_the_new_one == "own" else stage_two_decision)(
            number, reviewer, stack.clock.now()
        )
        assert not await drafts_repo.add_unless_taken(session=session, row=new)
        assert await drafts_repo.version_decisions(session=session, draft_id=number, version=1, round_=1)
    async with stack.db() as session:
        listed = await drafts_repo.list_decisions(session=session, draft_id=number)
    assert len(listed) == (1 if taken_by == "wangxm" else 2)


async def test_a_rounds_stage_assignments_are_read_once_a_transaction_and_a_new_one_is_seen(
    stack: Stack,
) -> None:
    """A tap asks who holds its stage, then the next stage; both come from one read of the
    round's 转审/加签 rows, and one added in the same transaction is seen at once."""
    number = await submitted(stack)
    now = stack.clock.now()
    reads: list[str] = []

    def assignment(stage: int, people: str) -> StageAssignment:
        return StageAssignment(
            draft_id=number, version=1, round=1, stage=stage, assignees=people, by="zhangkz", at=now
        )

    async with stack.db() as session, session.begin():

        async def holders(stage: int, round_: int = 1) -> str | None:
            found = await drafts_repo.stage_assignment(
                session=session, draft_id=number, version=1, round_=round_, stage=stage
            )
            return found.assignees if found is not None else None

        session.add(assignment(2, "liuzr"))
        with direct.observing(lambda sql: reads.append(sql) if "stageassignment" in sql.lower() else None):
            assert await holders(1) is None
            assert await holders(2) == "liuzr"
            assert len(reads) == 1, "the second stage is answered from the first read"
            session.add(assignment(2, "lizk"))
            assert await holders(2) == "lizk", "the latest one counts, even one added in this transaction"
            assert await holders(2, round_=2) is None, "another round is read on its own"
    assert len(reads) == 3
