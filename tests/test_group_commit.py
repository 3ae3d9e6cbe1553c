"""Group commit on SQLite: callbacks that arrive while another is applied share one transaction."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from bot.cli.stack import Stack
from bot.services import review as review_service
from bot.wecom.events import TextMessage
from storage import at_commit, direct, drafts_repo
from storage.audit_repo import append_audit, verify_audit_log
from storage.dedupe_repo import remember_callback, remember_callbacks
from storage.models import ApprovalCard, AuditEntry, OutboxMessage
from tests.flow import META, button_key, cards, decisions, drafts, say, texts
from tests.test_review_flow import HANDLER_FAILURES

EDITOR = "wangxm"  # submits, and holds each draft's 一审 card


async def submit(stack: Stack, how_many: int) -> list[dict[str, Any]]:
    """`how_many` drafts by the editor; their 一审 cards, in draft order."""
    for n in range(how_many):
        await say(stack, EDITOR, f"/submit 通知{n + 1}\n{META}正文第{n + 1}号。")
        stack.clock.advance(seconds=10)  # type: ignore[attr-defined]
    return [c.payload["template_card"] for c in cards(stack, EDITOR)]


def approve(stack: Stack, card: dict[str, Any]) -> Awaitable[Any]:
    return stack.sim.click(EDITOR, card["task_id"], button_key(card, "同意"))


def count_commits(stack: Stack) -> list[int]:
    commits: list[int] = []
    event.listen(stack.db.kw["bind"].sync_engine, "commit", lambda _conn: commits.append(1))
    return commits


class HeldDecision:
    """Stops the decisions on `draft_ids` inside their open transactions until released, so the
    callbacks that arrive meanwhile queue up behind them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *draft_ids: int) -> None:
        self.entered: list[int] = []
        self.release = asyncio.Event()
        real = review_service.decide

        async def held(scope: Any, draft: Any, **fields: Any) -> Any:
            if draft.id in draft_ids:
                self.entered.append(draft.id)
                await asyncio.wait_for(self.release.wait(), 10)
            return await real(scope, draft, **fields)

        monkeypatch.setattr(review_service, "decide", held)


Post = Callable[[], Awaitable[Any]]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for `condition` (a request on its way over loopback HTTP): poll, bounded."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


async def queued_behind(
    stack: Stack, held: HeldDecision, first: Post | list[Post], *later: Post
) -> list[Any]:
    """Post `first` (one held callback, or several, each held before the next is posted); while
    held, post `later` one after another (so they queue in this order); then release. The
    answers, in posting order."""
    posted = []
    for post in first if isinstance(first, list) else [first]:
        entered = len(held.entered)
        posted.append(asyncio.ensure_future(post()))
        await until(lambda n=entered: len(held.entered) > n, "the held callback reached its decision")
    for post in later:
        waiting = stack.dispatcher.queued
        posted.append(asyncio.ensure_future(post()))
        await until(lambda n=waiting: stack.dispatcher.queued > n, "the callback queued")
    held.release.set()
    return [await answer for answer in posted]


async def held_then_three(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tapped: list[dict[str, Any]]
) -> list[Any]:
    """同意 on the first `groups_at_once` cards, each held in its decision (every group busy),
    then on three more, which queue and are applied together; the answers, in order."""
    at_once = stack.dispatcher.groups_at_once
    return await queued_behind(
        stack,
        HeldDecision(monkeypatch, *range(1, at_once + 1)),
        [lambda card=card: approve(stack, card) for card in tapped[:at_once]],
        *(lambda card=card: approve(stack, card) for card in tapped[at_once:]),
    )


async def test_while_every_group_is_busy_new_taps_wait_and_then_share_one_transaction(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite applies one group at a time, PostgreSQL a few: either way, taps arriving while
    all are busy are applied together as soon as one is free."""
    at_once = stack.dispatcher.groups_at_once
    assert at_once >= 1
    tapped = await submit(stack, at_once + 3)
    commits = count_commits(stack)
    card_reads: list[str] = []
    card_writes: list[str] = []

    def observed(sql: str) -> None:
        if "approvalcard.id AS card_id" in sql:
            card_reads.append(sql)
        if "INSERT INTO approvalcard" in sql:
            card_writes.append(sql)

    with direct.observing(observed):
        answers = await held_then_three(stack, monkeypatch, tapped)
    assert [a.status for a in answers] == [200] * (at_once + 3)
    assert len(commits) == at_once + 1, "each held tap alone, the three that waited together"
    # PostgreSQL reads the three cards (and locks their drafts) in one statement before the
    # first of them is applied (a round trip each saved); SQLite reads each as its tap runs.
    postgres = stack.db.kw["bind"].dialect.name == "postgresql"
    assert len(card_reads) == at_once + (1 if postgres else 3)
    # And writes the three taps' decisions, drafts moved on, cards closed and 二审 cards in one
    # statement (each card's id drawn with that read).
    assert len(card_writes) == at_once + (1 if postgres else 3), card_writes
    assert sorted((d.draft_id, d.stage) for d in await decisions(stack)) == [
        (n, 1) for n in range(1, at_once + 4)
    ]
    async with stack.db() as session:
        open_cards = (
            await session.exec(select(ApprovalCard).where(col(ApprovalCard.closed).is_(False)))
        ).all()
        sent = (await session.exec(select(OutboxMessage.card_id).where(OutboxMessage.op == "send"))).all()
    assert sorted((c.draft_id, c.stage) for c in open_cards) == [(n, 2) for n in range(1, at_once + 4)]
    assert {c.id for c in open_cards} <= set(sent), "each 二审 card sent by its own id"
    async with stack.db() as session:
        assert (await verify_audit_log(session=session)).ok


async def test_a_group_reads_who_is_away_with_its_cards_and_hands_the_next_stage_to_the_delegate(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """张科长 is away, 孙科长 stands in: the 二审 cards of taps applied together go to 孙科长
    alone. On PostgreSQL who is away comes with the group's read of its cards (no statement of
    its own); SQLite reads it once for the group."""
    await say(stack, "zhangkz", "/away 至 2026-11-30 代理 sunkz")
    at_once = stack.dispatcher.groups_at_once
    tapped = await submit(stack, at_once + 3)
    before = {user: len(cards(stack, user)) for user in ("zhangkz", "sunkz")}
    away_reads: list[str] = []

    def observed(sql: str) -> None:
        if sql.lstrip().startswith("SELECT delegation."):
            away_reads.append(sql)

    with direct.observing(observed):
        answers = await held_then_three(stack, monkeypatch, tapped)
    assert [a.status for a in answers] == [200] * (at_once + 3)
    await stack.drain()
    assert len(cards(stack, "zhangkz")) == before["zhangkz"], "nothing for the one away"
    handed = cards(stack, "sunkz")[before["sunkz"] :]
    assert sorted(c.payload["template_card"]["task_id"].split("-")[1] for c in handed) == sorted(
        f"d{n}" for n in range(1, at_once + 4)
    )
    postgres = stack.db.kw["bind"].dialect.name == "postgresql"
    # each held tap reads it alone; the three that waited: with their cards, or once together
    assert len(away_reads) == at_once + (0 if postgres else 1), away_reads


async def test_a_tap_after_its_draft_was_withdrawn_in_the_same_group_is_refused(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's cards are read before any of its callbacks runs (PostgreSQL): a withdrawal
    applied ahead of a tap on that draft's card in the same group is still seen by the tap."""
    at_once = stack.dispatcher.groups_at_once
    tapped = await submit(stack, at_once + 2)
    withdrawn, last = at_once + 1, tapped[-1]
    held = HeldDecision(monkeypatch, *range(1, at_once + 1))
    answers = await queued_behind(
        stack,
        held,
        [lambda card=card: approve(stack, card) for card in tapped[:at_once]],
        lambda: stack.sim.send_text(EDITOR, f"/withdraw {withdrawn} 标题需调整"),
        lambda: approve(stack, tapped[at_once]),
        lambda: approve(stack, last),
    )
    assert [a.status for a in answers] == [200] * (at_once + 3)
    assert sorted((d.draft_id, d.stage) for d in await decisions(stack)) == [
        (n, 1) for n in [*range(1, at_once + 1), at_once + 2]
    ], "no decision on the withdrawn draft"
    assert [d.status for d in await drafts(stack)] == [*["in_review"] * at_once, "withdrawn", "in_review"]
    async with stack.db() as session:
        assert (await verify_audit_log(session=session)).ok


async def test_taps_arriving_while_one_is_applied_share_one_transaction(
    sqlite_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = sqlite_stack
    first, *rest = await submit(stack, 4)
    held = HeldDecision(monkeypatch, 1)
    commits = count_commits(stack)
    answers = await queued_behind(
        stack, held, *(lambda card=card: approve(stack, card) for card in (first, *rest))
    )
    assert [a.status for a in answers] == [200] * 4
    assert len(commits) == 2, "the first alone, the three that waited for it together"
    assert [(d.draft_id, d.stage) for d in await decisions(stack)] == [(1, 1), (2, 1), (3, 1), (4, 1)]
    assert [d.stage for d in await drafts(stack)] == [2, 2, 2, 2]
    async with stack.db() as session:
        assert (await verify_audit_log(session=session)).ok
        approvals = (
            await session.exec(
                select(AuditEntry).where(AuditEntry.action == "approve").order_by(col(AuditEntry.id))
            )
        ).all()
        rows = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    assert [e.draft_id for e in approvals] == [1, 2, 3, 4], "the chain keeps the order they arrived in"
    assert {d.draft_id: d.audit_id for d in await decisions(stack)} == {e.draft_id: e.id for e in approvals}
    # Each tap's messages stay together, in the order it queued them (the editor's card
    # greyed out, the next stage's card and text, the editor told last).
    caused = [(r.op, r.recipients) for r in rows if r.created_at >= rows[-1].created_at]
    assert caused == 4 * [
        ("update_card", ""),
        ("send", "zhangkz|sunkz"),
        ("send", "zhangkz|sunkz"),
        ("send", EDITOR),
    ]
    await stack.drain()
    assert sum("一审已同意" in t for t in texts(stack, EDITOR)) == 4


async def test_submissions_sharing_a_transaction_each_confirm_before_their_own_card(
    sqlite_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = sqlite_stack
    (first,) = await submit(stack, 1)
    held = HeldDecision(monkeypatch, 1)
    before = len(stack.sim.inbox(EDITOR))

    def submission(n: int) -> Post:
        return lambda: stack.sim.send_text(EDITOR, f"/submit 通知{n}\n{META}正文第{n}号。")

    answers = await queued_behind(stack, held, lambda: approve(stack, first), submission(2), submission(3))
    assert [a.status for a in answers] == [200] * 3
    await stack.drain()
    received = [
        ("card" if d.msgtype == "template_card" else d.payload["text"]["content"][:5])
        for d in stack.sim.inbox(EDITOR)[before:]
    ]
    # the tap's answer, then each submission's 「已收到投稿」 ahead of its own preview and card
    assert received[1:] == ["已收到投稿", "【一审·待", "card", "已收到投稿", "【一审·待", "card"], received
    assert [d.title for d in await drafts(stack)] == ["通知1", "通知2", "通知3"]


@pytest.mark.parametrize(("failure", "answer"), HANDLER_FAILURES)
async def test_a_tap_refused_inside_a_group_leaves_the_others_applied_and_only_its_answer(
    sqlite_stack: Stack, monkeypatch: pytest.MonkeyPatch, failure: Exception, answer: str
) -> None:
    stack = sqlite_stack
    first, second, third, fourth = await submit(stack, 4)
    held = HeldDecision(monkeypatch, 1)
    decide = review_service.decide

    async def fail_on_third(scope: Any, draft: Any, **fields: Any) -> Any:
        if draft.id != 3:
            return await decide(scope, draft, **fields)
        await drafts_repo.set_conversation(
            session=scope.session, userid=scope.user, kind="reject_reason", data={}, at=scope.now()
        )
        await append_audit(
            session=scope.session, at=scope.now(), actor=scope.user, action="approve", draft_id=3
        )
        scope.outbox.send_text(["zhangkz"], "不该送达的通知")
        raise failure

    monkeypatch.setattr(review_service, "decide", fail_on_third)
    before = len(texts(stack, EDITOR))
    answers = await queued_behind(
        stack, held, *(lambda card=card: approve(stack, card) for card in (first, second, third, fourth))
    )
    assert [a.status for a in answers] == [200] * 4
    assert [(d.draft_id, d.stage) for d in await decisions(stack)] == [(1, 1), (2, 1), (4, 1)]
    assert [d.stage for d in await drafts(stack)] == [2, 2, 1, 2]
    async with stack.db() as session:
        assert (await verify_audit_log(session=session)).ok
        entries = (await session.exec(select(AuditEntry).where(AuditEntry.draft_id == 3))).all()
        assert [e.action for e in entries] == ["submit"], "nothing the refused handler wrote stays"
    await stack.drain()
    assert "不该送达的通知" not in texts(stack, "zhangkz")
    replies = texts(stack, EDITOR)[before:]
    answered = [t for t in replies if "一审已同意" in t or t == answer]
    assert len(answered) == 4 and answered[2] == answer, "answers in the order the taps arrived"


async def test_a_resend_inside_the_same_group_is_applied_once(
    sqlite_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = sqlite_stack
    first, second = await submit(stack, 2)
    held = HeldDecision(monkeypatch, 1)
    before = len(texts(stack, EDITOR))
    answers = await queued_behind(
        stack, held, lambda: approve(stack, first), lambda: approve(stack, second), stack.sim.resend_last
    )
    assert [a.status for a in answers] == [200] * 3
    assert [(d.draft_id, d.stage) for d in await decisions(stack)] == [(1, 1), (2, 1)]
    await stack.drain()
    assert sum("一审已同意" in t for t in texts(stack, EDITOR)[before:]) == 2
    assert len(cards(stack, "zhangkz")) == 2, "each 二审 card went out once"


async def test_a_group_whose_commit_fails_is_applied_one_by_one(
    sqlite_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A storage error on the group's commit (a full disk for a moment) fails no callback of
    it by itself: each is applied again in a transaction of its own."""
    stack = sqlite_stack
    first, *rest = await submit(stack, 3)
    held = HeldDecision(monkeypatch, 1)
    seal = at_commit._finishers["audit"]
    failed: list[int] = []

    def fail_once_for_a_group(session: Any, pending: list[Any]) -> None:
        if len(pending) > 1 and not failed:
            failed.append(len(pending))
            raise sqlite3.OperationalError("database or disk is full")
        seal(session, pending)

    monkeypatch.setitem(at_commit._finishers, "audit", fail_once_for_a_group)
    answers = await queued_behind(
        stack, held, *(lambda card=card: approve(stack, card) for card in (first, *rest))
    )
    assert failed == [2]
    assert [a.status for a in answers] == [200] * 3
    assert [(d.draft_id, d.stage) for d in await decisions(stack)] == [(1, 1), (2, 1), (3, 1)]
    async with stack.db() as session:
        assert (await verify_audit_log(session=session)).ok


async def test_a_callback_arriving_as_the_last_group_finishes_is_applied(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A callback that arrives in the same turn of the event loop as the last group finishes
    (its applier has found nothing more to do, but the task's done-callbacks have not run yet)
    starts a new applier instead of waiting for one that has stopped: under load two /help
    requests once waited forever this way."""
    now = int(stack.clock.now().timestamp())
    first, second = (
        TextMessage(user=EDITOR, content="/help", msg_id=9_000_000 + n, create_time=now) for n in range(2)
    )
    dispatcher = stack.dispatcher
    apply_together = dispatcher._apply_together
    arriving: list[asyncio.Future[str]] = []

    async def then_another_arrives(events: list[Any]) -> list[Any]:
        results = await apply_together(events)
        if not arriving:  # scheduled now: it runs before the finished applier's done-callbacks
            arriving.append(asyncio.ensure_future(dispatcher.feed(second)))
        return results

    monkeypatch.setattr(dispatcher, "_apply_together", then_another_arrives)
    assert await asyncio.wait_for(dispatcher.feed(first), 10) == "command:help"
    assert await asyncio.wait_for(arriving[0], 10) == "command:help"
    assert dispatcher.idle.is_set(), "nothing left in flight (the outbox sender would give way forever)"


async def test_a_callback_given_up_on_while_queued_is_still_applied_with_its_group(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request cancelled while its callback waits for a group (the client went away, the
    server shuts the handler down) gets no answer, but the callback is applied with the others
    queued with it, which are answered as usual: what WeCom sent is recorded once either way."""
    at_once = stack.dispatcher.groups_at_once
    tapped = await submit(stack, at_once)
    held = HeldDecision(monkeypatch, *range(1, at_once + 1))
    now = int(stack.clock.now().timestamp())
    given_up, kept = (
        TextMessage(user=EDITOR, content="/help", msg_id=9_100_000 + n, create_time=now) for n in range(2)
    )
    dispatcher = stack.dispatcher
    taps = []
    for card in tapped:
        entered = len(held.entered)
        taps.append(asyncio.ensure_future(approve(stack, card)))
        await until(lambda n=entered: len(held.entered) > n, "the held tap reached its decision")
    cancelled = asyncio.ensure_future(dispatcher.feed(given_up))
    await until(lambda: dispatcher.queued == 1, "the first /help queued")
    answered = asyncio.ensure_future(dispatcher.feed(kept))
    await until(lambda: dispatcher.queued == 2, "the second /help queued")
    cancelled.cancel()
    held.release.set()
    assert await asyncio.wait_for(answered, 10) == "command:help"
    assert [t.status for t in await asyncio.gather(*taps)] == [200] * at_once
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    async with stack.db() as session:
        assert not await remember_callback(session=session, key=given_up.dedupe_key, at=stack.clock.now())
    assert await asyncio.wait_for(dispatcher.feed(given_up), 10) == "duplicate", (
        "a re-send is not applied again"
    )
    assert dispatcher.idle.is_set()


async def test_a_groups_dedupe_keys_are_recorded_in_one_statement_each_once(stack: Stack) -> None:
    """On both databases: keys new to the table come back (a key twice in the list, once), keys
    applied before do not, and what was recorded stays recorded."""
    now = stack.clock.now()
    async with stack.db() as session, session.begin():
        assert await remember_callbacks(session=session, keys=["k1", "k2", "k1"], at=now) == {"k1", "k2"}
        assert await remember_callbacks(session=session, keys=["k2", "k3"], at=now) == {"k3"}
        assert await remember_callbacks(session=session, keys=[], at=now) == set()
    async with stack.db() as session, session.begin():
        assert not await remember_callback(session=session, key="k3", at=now)
        assert await remember_callback(session=session, key="k4", at=now)
