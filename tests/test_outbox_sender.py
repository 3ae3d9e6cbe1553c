"""The outbox sender as it runs in production: its background loop, retries with a doubling
backoff until the content's lifetime ends, cards that reached WeCom before a crash, response codes
kept on the right rows, and the card updates of a 会签 stage. What is checked is what people and
operators see: the simulator's inboxes and cards, the rows' statuses, the duty robot's texts. Time
is the injected clock; the loop's own wait is the only real time involved, and tests wait for it
on its passes (bounded by a deadline), never by sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock, ensure_utc
from bot.keys import HTTP, SENDER, WECOM
from bot.wecom import outbox as outbox_module
from bot.wecom.client import WeComClient
from bot.wecom.outbox import (
    FAILED_TEXT,
    Outbox,
    OutboxDecisionError,
    OutboxSender,
    discard_message,
    retry_message,
    stuck_messages,
)
from storage.models import ApprovalCard, AuditEntry, OutboxMessage
from tests.conftest import T0
from tests.flow import active_card, cards, last_text, say, tap, texts
from tests.test_outbox_delivery import (
    ROBOT,
    Crash,
    CrashingSender,
    advance,
    counted_in_a_pass,
    queue_card,
    queue_ledger,
    queue_texts,
    robot_texts,
    rows,
    sender_with,
    statements_in_a_pass,
)
from tests.test_review_flow import SUBMISSION

DEADLINE = 10.0  # seconds of real time a loop may take to do what a test waits for
SEND = "/cgi-bin/message/send"
BUSY = f"{SEND}: errcode -1 system busy"


# ---- the background loop ------------------------------------------------------------------


class ObservedSender(OutboxSender):
    """The real sender and its real loop. Each drain pass is counted and announced, so a test can
    wait for the loop rather than for the clock; `claim_faults` makes the next claims fail the
    way a dropped database connection does (fault injection at the storage boundary)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.started = 0
        self.finished = 0
        self.claim_faults = 0
        self._passed = asyncio.Condition()

    async def drain(self, *, give_way: bool = False) -> None:
        self.started += 1
        try:
            await super().drain(give_way=give_way)
        finally:
            self.finished += 1
            async with self._passed:
                self._passed.notify_all()

    async def _claim_next(self) -> tuple[OutboxMessage, str] | None:
        if self.claim_faults:
            self.claim_faults -= 1
            raise ConnectionResetError("connection to the database was lost")
        return await super()._claim_next()

    async def after_pass(self, predicate: Callable[[], bool]) -> None:
        async with self._passed:
            await self._passed.wait_for(predicate)


def observed(stack: Stack, *, poll_seconds: float) -> ObservedSender:
    """A second sender on the stack's database and simulator (the stack's own is not running)."""
    client = WeComClient(
        stack.app[HTTP],
        base_url=stack.settings.wecom.api_base,
        corp_id=stack.settings.wecom.corp_id,
        secret=stack.settings.wecom.secret,
        agent_id=stack.settings.wecom.agent_id,
        clock=stack.clock,
    )
    return ObservedSender(
        db=stack.db, wecom=client, clock=stack.clock, settings=stack.settings, poll_seconds=poll_seconds
    )


@contextlib.asynccontextmanager
async def looping(sender: OutboxSender) -> AsyncIterator[asyncio.Task[None]]:
    """`sender.run_forever()` as the app runs it: a task, cancelled at the end."""
    task = asyncio.create_task(sender.run_forever(), name="outbox-sender-under-test")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(
    sender: ObservedSender, task: asyncio.Task[None], predicate: Callable[[], bool], what: str
) -> None:
    """Wait until `predicate` holds after one of the loop's passes; fail if the loop ends first
    or nothing happens within DEADLINE."""
    waiter = asyncio.ensure_future(sender.after_pass(predicate))
    done, _ = await asyncio.wait({waiter, task}, timeout=DEADLINE, return_when=asyncio.FIRST_COMPLETED)
    if waiter in done:
        return
    waiter.cancel()
    if task.done():
        raise AssertionError(f"the sender loop ended ({task.exception()!r}) before {what}")
    raise AssertionError(f"no {what} within {DEADLINE} s (passes: {sender.finished})")


async def give_way(stack: Stack) -> None:
    """Let a loop that does not wait (a bug) run: event-loop turns and database round trips of
    our own. A loop that waits for its wake-up stays blocked throughout; no time passes."""
    for _ in range(5):
        for _ in range(20):
            await asyncio.sleep(0)
        async with stack.db() as session:
            await session.exec(select(func.count()).select_from(OutboxMessage))


async def test_sender_loop_delivers_on_a_kick_exactly_once_then_waits(stack: Stack) -> None:
    sender = observed(stack, poll_seconds=3600)  # within a test only a kick can wake it
    async with looping(sender) as task:
        await until(sender, task, lambda: sender.finished == 1, "first look at the outbox")
        await queue_texts(stack, "wangxm", ["第一条", "第二条"])
        await give_way(stack)
        assert stack.sim.deliveries("wangxm") == {}, "queued, not yet kicked"
        sender.kick()
        await until(sender, task, lambda: sender.finished == 2, "pass after the kick")
        assert stack.sim.deliveries("wangxm") == {"第一条": 1, "第二条": 1}
        await give_way(stack)
        assert (sender.started, sender.finished) == (2, 2), "idle: the loop waits, it does not spin"
        await queue_texts(stack, "wangxm", ["第三条"])
        sender.kick()
        await until(sender, task, lambda: sender.finished == 3, "pass after the second kick")
        assert not task.done()
    assert stack.sim.deliveries("wangxm") == {"第一条": 1, "第二条": 1, "第三条": 1}
    assert stack.sim.call_count("/message/send") == 3
    assert [r.status for r in await rows(stack)] == ["sent", "sent", "sent"]


async def test_sender_loop_survives_a_failed_pass_and_wakes_on_the_next_kick(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    await queue_texts(stack, "wangxm", ["断线之后送达"])
    sender = observed(stack, poll_seconds=3600)
    sender.claim_faults = 1
    with caplog.at_level(logging.ERROR, logger="bot.wecom.outbox"):
        async with looping(sender) as task:
            await until(sender, task, lambda: sender.finished == 1, "the failing pass")
            await give_way(stack)
            assert stack.sim.deliveries("wangxm") == {}
            assert not task.done(), "the loop outlives the error"
            sender.kick()
            await until(sender, task, lambda: sender.finished == 2, "pass after the kick")
    assert stack.sim.deliveries("wangxm") == {"断线之后送达": 1}
    (record,) = [r for r in caplog.records if r.name == "bot.wecom.outbox"]
    assert record.levelno == logging.ERROR and record.getMessage() == "outbox drain failed; retrying"
    assert record.exc_info is not None and record.exc_info[0] is ConnectionResetError


async def test_sender_loop_polls_without_kicks_and_sends_what_falls_due(stack: Stack) -> None:
    stack.sim.fail_next("/message/send", -1)  # busy once: the text is due again 5 s later
    await queue_texts(stack, "wangxm", ["忙过之后送达"])
    sender = observed(stack, poll_seconds=0.01)  # the loop's own wait: each one times out
    async with looping(sender) as task:
        await until(sender, task, lambda: sender.finished >= 3, "three polls")
        assert stack.sim.deliveries("wangxm") == {}, "not due again on the injected clock"
        advance(stack, seconds=5)
        await until(sender, task, lambda: stack.sim.deliveries("wangxm") != {}, "delivery by a poll")
    assert stack.sim.deliveries("wangxm") == {"忙过之后送达": 1}
    assert stack.sim.call_count("/message/send") == 2


async def test_running_bot_answers_a_person_with_nobody_draining(
    database_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """create_app's own sender task: the dispatcher's commit kicks it, the reply arrives, and
    then the loop idles (its default poll is a second: one pass at most while we give way)."""
    async with running_stack(stack_settings(database_url), clock, run_sender=True) as stack:
        sender = stack.app[SENDER]
        passes = 0
        drain = sender.drain

        async def counted(*, give_way: bool = False) -> None:
            nonlocal passes
            passes += 1
            await drain(give_way=give_way)

        monkeypatch.setattr(sender, "drain", counted)
        result = await stack.sim.send_text("wangxm", "/help")
        assert result.status == 200

        async def delivered() -> None:  # polls the simulator and the row; no assertion waits
            # two stores polled: there is no one event to wait on
            while not texts(stack, "wangxm") or [r.status for r in await rows(stack)] != ["sent"]:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

        await asyncio.wait_for(delivered(), DEADLINE)
        (reply,) = texts(stack, "wangxm")
        assert "/help" in reply
        before = passes
        await give_way(stack)
        assert passes - before <= 1, "idle, the sender waits for a kick or its poll"
        async with aiohttp.ClientSession() as http, http.get(f"{stack.bot_url}/healthz") as resp:
            health = await resp.json()
            assert (resp.status, health["status"], health["database"]) == (200, "ok", "ok")
            assert health["outbox"] == {"pending": 0, "failed": 0, "oldest_pending_seconds": 0}


# ---- long texts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "received"),
    [
        ("a" * 2048, ["a" * 2048]),  # exactly the limit: one message
        ("a" * 1023 + "\n" + "b" * 1023 + "\nc", ["a" * 1023 + "\n" + "b" * 1023, "c"]),  # 2048 + 1
        ("\n".join(["字" * 100] * 10), ["\n".join(["字" * 100] * 6), "\n".join(["字" * 100] * 4)]),
        ("x\n" + "a" * 2048, ["x", "a" * 2048]),  # a line that fits a message is not cut
        ("a" * 3000, ["a" * 2048, "a" * 952]),  # one line too long: cut, not lost
        ("字" * 1000, ["字" * 682, "字" * 318]),  # never inside a character (3 bytes each)
        ("x" * 100 + "\n" + "y" * 3000, ["x" * 100 + "\n" + "y" * 1947, "y" * 1053]),
        ("a" * 2048 + "\n", ["a" * 2048]),  # no empty message after the cut (WeCom: 44004)
    ],
    ids=[
        "2048",
        "2049-at-a-line",
        "lines",
        "whole-line",
        "long-line",
        "cjk-line",
        "tail-then-long",
        "no-empty",
    ],
)
async def test_a_long_text_arrives_in_pieces_of_at_most_2048_bytes(
    stack: Stack, text: str, received: list[str]
) -> None:
    await queue_texts(stack, "wangxm", [text])
    await stack.drain()
    assert texts(stack, "wangxm") == received
    assert stack.sim.truncated == []
    assert [r.status for r in await rows(stack)] == ["sent"] * len(received)


# ---- retries, backoff and lifetimes -------------------------------------------------------


@pytest.fixture
async def short_lived(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    """Texts live one hour here (`[outbox] text_lifetime_hours`); cards always 72 h."""
    settings = stack_settings(
        database_url, {"duty": {"webhook_key": ROBOT}, "outbox": {"text_lifetime_hours": 1}}
    )
    async with running_stack(settings, clock) as stack:
        stack.sim.add_robot(ROBOT)
        yield stack


async def only_row(stack: Stack, op: str = "send") -> OutboxMessage:
    (row,) = [r for r in await rows(stack) if r.op == op]
    return row


async def wait_of(stack: Stack, row_id: int | None) -> timedelta:
    """How long from now until the row is tried again."""
    (row,) = [r for r in await rows(stack) if r.id == row_id]
    return ensure_utc(row.not_before) - stack.clock.now()


async def test_network_errors_are_retried_with_a_doubling_backoff_capped_at_ten_minutes(
    short_lived: Stack,
) -> None:
    stack = short_lived
    await queue_texts(stack, "wangxm", ["网络恢复后送达"])
    stack.sim.outage(503)
    waits: list[int] = []
    await stack.drain()
    for attempt in range(1, 11):
        row = await only_row(stack)
        assert (row.status, row.attempts) == ("pending", attempt), "a network error is never final"
        assert row.last_error == "/cgi-bin/gettoken: HTTP 503"
        wait = await wait_of(stack, row.id)
        waits.append(int(wait.total_seconds()))
        calls = len(stack.sim.calls)
        stack.clock.advance(wait - timedelta(seconds=1))  # type: ignore[attr-defined]
        await stack.drain()
        assert len(stack.sim.calls) == calls, "not tried before it is due"
        advance(stack, seconds=1)
        await stack.drain()
        assert len(stack.sim.calls) == calls + 1, "tried again the moment it is due"
    assert waits == [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]
    stack.sim.end_outage()
    advance(stack, minutes=10)
    await stack.drain()
    row = await only_row(stack)
    assert (row.status, row.attempts) == ("sent", 12)
    assert stack.sim.deliveries("wangxm") == {"网络恢复后送达": 1}
    assert robot_texts(stack) == [], "retrying is not a failure anyone is told about"


async def test_a_card_failing_for_three_days_still_waits_ten_minutes(short_lived: Stack) -> None:
    stack = short_lived
    await queue_card(stack, "wangxm", "card-long-1")
    row = await only_row(stack)
    async with stack.db() as session, session.begin():  # as after 431 tries in three days
        await session.exec(update(OutboxMessage).where(col(OutboxMessage.id) == row.id).values(attempts=431))
    stack.sim.fail_next("/message/send", -1)
    await stack.drain()
    row = await only_row(stack)
    assert (row.status, row.attempts, row.last_error) == ("pending", 432, BUSY)
    assert await wait_of(stack, row.id) == timedelta(minutes=10)


async def test_retries_end_exactly_when_the_content_lifetime_ends(short_lived: Stack) -> None:
    """Busy for ever: a text is tried until its hour is up, a card and a card update for 72 h;
    then each is expired (never tried again) and the admins' robot is told once per message."""
    stack = short_lived
    start = stack.clock.now()
    stack.sim.fail_next("/message/send", -1, times=100_000)
    stack.sim.fail_next("/message/update_template_card", -1, times=100_000)
    await queue_texts(stack, "wangxm", ["一小时内有效"])
    await queue_card(stack, "zhaoli", "card-life-1")
    async with stack.db() as session, session.begin():
        Outbox(session, stack.clock).update_card("code-life-1", replace_name="已处理")
    text_row, card_row = [r for r in await rows(stack) if r.op == "send"]
    update_row = await only_row(stack, "update_card")

    await stack.drain()
    for wait in (5, 10, 20, 40, 80, 160, 320):  # attempts 1..7 at 0, 5, 15 … 315 s
        assert await wait_of(stack, text_row.id) == timedelta(seconds=wait)
        advance(stack, seconds=wait)
        await stack.drain()
    assert stack.clock.now() - start == timedelta(seconds=635)
    waits = [await wait_of(stack, r.id) for r in (text_row, card_row, update_row)]
    assert waits == [timedelta(minutes=10)] * 3

    stack.clock.set(start + timedelta(minutes=50))  # type: ignore[attr-defined]
    await stack.drain()  # the 9th try; the next is due exactly when the text's hour is up
    assert await wait_of(stack, text_row.id) == timedelta(minutes=10)
    advance(stack, minutes=10)
    sends = stack.sim.call_count("/message/send")
    await stack.drain()
    text_row, card_row = [r for r in await rows(stack) if r.op == "send"]
    assert (text_row.status, text_row.attempts, text_row.last_error) == ("expired", 9, BUSY)
    assert stack.sim.call_count("/message/send") == sends + 1, "only the card was tried"
    assert (card_row.status, card_row.attempts) == ("pending", 10)
    assert robot_texts(stack) == [FAILED_TEXT.format(id=text_row.id, error=f"expired: {BUSY}")]

    stack.clock.set(start + timedelta(hours=72, minutes=-10))  # type: ignore[attr-defined]
    await stack.drain()
    assert [await wait_of(stack, r.id) for r in (card_row, update_row)] == [timedelta(minutes=10)] * 2
    stack.clock.set(start + timedelta(hours=72, seconds=-1))  # type: ignore[attr-defined]
    await stack.drain()
    statuses = [r.status for r in await rows(stack) if r.op in ("send", "update_card")]
    assert statuses == ["expired", "pending", "pending"]
    calls = len(stack.sim.calls)
    advance(stack, seconds=1)
    await stack.drain()
    assert len(stack.sim.calls) == calls + 2, "no WeCom call, only the two robot texts"
    card_row, update_row = [r for r in await rows(stack) if r.id in (card_row.id, update_row.id)]
    assert (card_row.status, card_row.attempts) == ("expired", 11)
    assert (update_row.status, update_row.attempts) == ("expired", 11)
    update_busy = "/cgi-bin/message/update_template_card: errcode -1 system busy"
    assert robot_texts(stack)[1:] == [
        FAILED_TEXT.format(id=card_row.id, error=f"expired: {BUSY}"),
        FAILED_TEXT.format(id=update_row.id, error=f"expired: {update_busy}"),
    ]
    assert stack.sim.deliveries("wangxm") == {} and stack.sim.deliveries("zhaoli", "template_card") == {}


async def test_a_retried_message_gets_a_fresh_lifetime(short_lived: Stack) -> None:
    stack = short_lived
    stack.sim.fail_next("/message/send", -1, times=100_000)
    await queue_texts(stack, "wangxm", ["重新排队"])
    await stack.drain()
    advance(stack, hours=1)
    await stack.drain()
    row = await only_row(stack)
    assert row.status == "expired"
    advance(stack, minutes=30)
    async with stack.db() as session, session.begin():
        await retry_message(session, row.id or 0, stack.clock.now())  # sanshen outbox --retry
    stack.sim.clear_failures()
    advance(stack, minutes=59)
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"重新排队": 1}


@pytest.mark.parametrize(
    ("kind", "errcode"),
    [("text", 40058), ("text", 42014), ("card", 40058), ("update", 42014)],
)
async def test_a_rejected_message_fails_at_once_and_admins_are_told(
    short_lived: Stack, kind: str, errcode: int
) -> None:
    """A code that retrying cannot cure (not busy, not a token, not an admin's) is final. 42014
    means "this card's task_id was sent before" only for a card's message/send."""
    stack = short_lived
    path = "/message/update_template_card" if kind == "update" else "/message/send"
    stack.sim.fail_next(path, errcode)
    if kind == "text":
        await queue_texts(stack, "wangxm", ["被拒收"])
    elif kind == "card":
        await queue_card(stack, "wangxm", "card-rejected-1")
    else:
        async with stack.db() as session, session.begin():
            Outbox(session, stack.clock).update_card("code-rejected-1", replace_name="已处理")
    await stack.drain()
    (row,) = [r for r in await rows(stack) if r.op != "webhook"]
    errmsg = {40058: "invalid parameter", 42014: "taskid has existed or empty or exceed max len"}[errcode]
    error = f"/cgi-bin{path}: errcode {errcode} {errmsg}"
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, error)
    assert robot_texts(stack) == [FAILED_TEXT.format(id=row.id, error=f"failed: {error}")]
    calls = stack.sim.call_count(path)
    advance(stack, hours=1)
    await stack.drain()
    assert stack.sim.call_count(path) == calls, "never tried again"
    assert stack.sim.inbox("wangxm") == []


def sender_failing_exports(stack: Stack, reason: str) -> OutboxSender:
    """A sender whose export builder raises RuntimeError(reason) (a bug, a missing template)."""

    async def broken(db: Any, payload: dict[str, Any]) -> tuple[str, bytes]:
        raise RuntimeError(reason)

    return OutboxSender(
        db=stack.db, wecom=stack.app[WECOM], clock=stack.clock, settings=stack.settings, export_file=broken
    )


async def test_one_row_failing_unexpectedly_is_retried_and_holds_up_nobody(
    short_lived: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    """An export that cannot be built (a bug, a missing template) fails like a busy WeCom: its
    reason recorded, retried with the backoff, expired with its reason at the end of its
    lifetime; the messages queued after it go out in the same pass."""
    stack = short_lived

    sender = sender_failing_exports(stack, "template missing")
    start = stack.clock.now()
    await queue_ledger(stack)
    await queue_texts(stack, "wangxm", ["排在后面"])
    with caplog.at_level(logging.ERROR, logger="bot.wecom.outbox"):
        await sender.drain()
    assert stack.sim.deliveries("wangxm") == {"排在后面": 1}
    export = await only_row(stack, "export")
    assert (export.status, export.attempts, export.last_error) == (
        "pending",
        1,
        "RuntimeError: template missing",
    )
    assert await wait_of(stack, export.id) == timedelta(seconds=5)
    (record,) = [r for r in caplog.records if r.name == "bot.wecom.outbox" and r.levelno >= logging.ERROR]
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    stack.clock.set(start + timedelta(hours=1))  # type: ignore[attr-defined]
    await sender.drain()
    export = await only_row(stack, "export")
    assert (export.status, export.attempts) == ("expired", 1)
    assert robot_texts(stack) == [
        FAILED_TEXT.format(id=export.id, error="expired: RuntimeError: template missing")
    ]


async def test_a_very_long_failure_reason_is_cut_to_fit_the_row_and_the_notice(short_lived: Stack) -> None:
    """A reason of 1,000 characters (a long traceback line) is kept to the column's 500 (PostgreSQL
    refuses more, and the row would never be finished), and the admins' notice quotes 200."""
    stack = short_lived
    reason = "模板" + "缺" * 998

    sender = sender_failing_exports(stack, reason)
    start = stack.clock.now()
    await queue_ledger(stack)
    await sender.drain()
    error = f"RuntimeError: {reason}"
    assert (await only_row(stack, "export")).last_error == error[:500]
    stack.clock.set(start + timedelta(hours=1))  # type: ignore[attr-defined]
    await sender.drain()
    export = await only_row(stack, "export")
    assert (export.status, export.last_error) == ("expired", error[:500])
    assert robot_texts(stack) == [FAILED_TEXT.format(id=export.id, error=f"expired: {error}"[:200])]


async def test_a_card_sent_before_a_crash_is_marked_delivered_on_42014(short_lived: Stack) -> None:
    """The card reached WeCom, the bot died before marking it, and the retry comes after the
    duplicate check's window: WeCom refuses the task_id (42014), which proves the card is there."""
    stack = short_lived
    await queue_card(stack, "zhaoli", "card-crash-42014")
    with pytest.raises(Crash):
        await sender_with(stack, cls=CrashingSender).drain()
    assert stack.sim.deliveries("zhaoli", "template_card") == {"card-crash-42014": 1}
    advance(stack, hours=4, minutes=1)  # beyond enable_duplicate_check's 4 h
    await stack.drain()
    row = await only_row(stack)
    assert (row.status, row.attempts, row.last_error, row.msgid) == ("sent", 1, "", "")
    assert stack.sim.deliveries("zhaoli", "template_card") == {"card-crash-42014": 1}
    assert stack.sim.call_count("/message/send") == 2, "sent once, refused once"
    assert robot_texts(stack) == [], "nothing failed"


async def test_a_card_recovered_on_42014_keeps_no_made_up_response_code(short_lived: Stack) -> None:
    """After 42014 the card is known to be there, but its response_code is lost with the crashed
    sender. Closing its subject later must not try to grey it with a made-up code (a failure
    reported to the admins for nothing): it stays as it is, and a tap on it is refused then."""
    stack = short_lived
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "值班确认"},
        "task_id": "duty-42014",
        "button_list": [{"text": "确认", "key": "ok@duty-42014"}],
    }
    async with stack.db() as session, session.begin():
        Outbox(session, stack.clock).send_card(["zhaoli"], card, subject="incident:7")
    with pytest.raises(Crash):
        await sender_with(stack, cls=CrashingSender).drain()
    advance(stack, hours=4, minutes=1)
    await stack.drain()
    async with stack.db() as session, session.begin():
        await Outbox(session, stack.clock).close_cards("incident:7", replace_name="已处理")
    await stack.drain()
    assert stack.sim.call_count("/message/update_template_card") == 0
    assert robot_texts(stack) == [], "nothing failed"


async def test_a_crashed_senders_claim_lapses_after_exactly_one_minute(short_lived: Stack) -> None:
    stack = short_lived
    await queue_texts(stack, "wangxm", ["崩溃后补发"])
    with pytest.raises(Crash):
        await sender_with(stack, cls=CrashingSender).drain()
    advance(stack, seconds=60)
    await stack.drain()
    assert stack.sim.call_count("/message/send") == 1, "still the dead sender's for a minute"
    assert (await only_row(stack)).status == "pending"
    advance(stack, seconds=1)
    await stack.drain()
    assert stack.sim.call_count("/message/send") == 2, "taken over, repeated under the duplicate check"
    assert stack.sim.deliveries("wangxm") == {"崩溃后补发": 1}
    assert (await only_row(stack)).status == "sent"


async def test_a_row_another_sender_has_claimed_is_left_to_it_for_a_minute(short_lived: Stack) -> None:
    stack = short_lived
    await queue_texts(stack, "wangxm", ["另一实例在发"])
    assert await sender_with(stack)._claim_next() is not None  # another instance took it, then stalled
    advance(stack, seconds=60)
    await stack.drain()
    assert stack.sim.call_count("/message/send") == 0
    advance(stack, seconds=1)
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"另一实例在发": 1}


async def test_an_identical_text_whose_first_try_failed_still_arrives(short_lived: Stack) -> None:
    """The second of two identical texts goes without the duplicate check (WeCom would swallow
    it), and keeps going without it when it has to be tried again."""
    stack = short_lived
    await queue_texts(stack, "wangxm", ["暂无待办"])
    await stack.drain()
    advance(stack, minutes=1)
    stack.sim.fail_next("/message/send", -1)
    await queue_texts(stack, "wangxm", ["暂无待办"])
    await stack.drain()
    advance(stack, seconds=5)
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"暂无待办": 2}
    checks = [body.get("enable_duplicate_check") for path, body in stack.sim.calls if path == "/message/send"]
    assert checks == [1, None, None]


async def test_an_identical_text_exactly_one_window_later_keeps_the_duplicate_check(stack: Stack) -> None:
    """WeCom's window is open-ended at its far end: the same text exactly 4 h after the first is
    no duplicate, so it can go with the check on like any first try (a retry stays safe)."""
    window = stack.settings.outbox.duplicate_check_seconds
    await queue_texts(stack, "wangxm", ["今日无事"])
    await stack.drain()
    advance(stack, seconds=window)
    await queue_texts(stack, "wangxm", ["今日无事"])
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"今日无事": 2}
    checks = [body.get("enable_duplicate_check") for path, body in stack.sim.calls if path == "/message/send"]
    assert checks == [1, 1], "a twin a whole window old is no twin (one a minute old is: see above)"


async def test_an_export_whose_send_failed_is_sent_again_without_a_second_upload(stack: Stack) -> None:
    """The file was built and uploaded, then message/send failed: the retry sends the same
    media_id (valid 3 days), so WeCom's duplicate check can recognise it, and uploads nothing."""
    await queue_ledger(stack)
    stack.sim.fail_next("/message/send", -1)
    await stack.drain()
    advance(stack, seconds=5)
    await stack.drain()
    assert stack.sim.call_count("/message/send") == 2, "failed once, then sent"
    assert stack.sim.call_count("/media/upload") == 1
    (delivered,) = stack.sim.inbox("chenfb")
    export = await only_row(stack, "export")
    assert delivered.msgtype == "file" and export.status == "sent"
    assert delivered.payload["file"]["media_id"] == export.payload["media_id"]


async def test_a_failed_text_waits_for_its_retry_alone(stack: Stack) -> None:
    """WeCom was busy for wangxm's first text: it is tried again in 5 s, and his next text,
    queued after it, does not wait for that (only pacing holds a person's later messages)."""
    await queue_texts(stack, "wangxm", ["第一条", "第二条"])
    stack.sim.fail_next("/message/send", -1)
    await stack.drain()
    assert texts(stack, "wangxm") == ["第二条"]
    advance(stack, seconds=5)
    await stack.drain()
    assert texts(stack, "wangxm") == ["第二条", "第一条"]


async def test_each_person_gets_at_most_25_a_minute_in_order(stack: Stack) -> None:
    """WeCom silently drops a member's 31st message in a minute; the sender holds back past 25
    (a sliding minute per person), keeps each person's order and holds nobody else back."""
    await queue_texts(stack, "chenfb", [f"早{n}" for n in range(10)])
    await stack.drain()
    advance(stack, seconds=30)
    await queue_texts(stack, "chenfb", [f"午{n}" for n in range(20)])
    async with stack.db() as session, session.begin():
        Outbox(session, stack.clock).send_text(["chenfb", "wangxm"], "群发")
    await queue_texts(stack, "wangxm", ["单发"])
    await stack.drain()
    assert texts(stack, "chenfb") == [*(f"早{n}" for n in range(10)), *(f"午{n}" for n in range(15))]
    assert texts(stack, "wangxm") == [], "the group text waits for chenfb, and 单发 waits for it"
    held = [r for r in await rows(stack) if r.status == "pending"]
    assert len(held) == 7 and {(r.attempts, r.last_error) for r in held} == {(0, "")}
    assert {await wait_of(stack, r.id) for r in held} == {timedelta(seconds=30)}
    advance(stack, seconds=29)
    await stack.drain()
    assert len(texts(stack, "chenfb")) == 25
    advance(stack, seconds=1)  # the ten sent a minute ago leave the window
    await stack.drain()
    assert texts(stack, "chenfb")[25:] == [*(f"午{n}" for n in range(15, 20)), "群发"]
    assert texts(stack, "wangxm") == ["群发", "单发"]
    assert stack.sim.dropped == []


async def test_a_long_backlog_for_one_person_is_put_back_in_one_write_a_pass(stack: Stack) -> None:
    """A burst queues 300 messages for one reviewer. One pass sends 25 (the minute's allowance)
    and puts the other 275 back in one write, not a claim and a write each: on SQLite every one
    of those writes would wait its turn with the callbacks. Each minute after, 25 more, in order."""
    await queue_texts(stack, "chenfb", [f"第{n}条" for n in range(300)])
    commits = await counted_in_a_pass(stack, "commit")
    assert texts(stack, "chenfb") == [f"第{n}条" for n in range(25)]
    assert commits < 4 * 25 + 10, f"{commits} transactions for 25 sends and one backlog"
    held = [r for r in await rows(stack) if r.status == "pending"]
    assert len(held) == 275 and {await wait_of(stack, r.id) for r in held} == {timedelta(minutes=1)}
    advance(stack, minutes=1)
    await stack.drain()
    assert texts(stack, "chenfb") == [f"第{n}条" for n in range(50)]


async def test_a_pass_looks_up_what_is_due_a_batch_at_a_time_and_sends_in_order(stack: Stack) -> None:
    """A morning's burst: 120 texts for six people. One pass sends them all, each person's in
    the order queued, looking up what is due 50 rows at a time rather than once per row (each
    look used to load 50 rows to send one)."""
    people = ["wangxm", "zhaoli", "zhangkz", "sunkz", "liuzr", "chenfb"]
    for n in range(20):
        for person in people:
            await queue_texts(stack, person, [f"{person}第{n}条"])

    def a_look(sql: str) -> bool:
        return sql.startswith("SELECT") and "FROM outboxmessage" in sql and "ORDER BY outboxmessage.id" in sql

    looks = await statements_in_a_pass(stack, a_look)
    for person in people:
        assert texts(stack, person) == [f"{person}第{n}条" for n in range(20)]
    assert looks == 5, "120 rows: three looks that found rows, two that found none (one to end the pass)"
    assert {r.status for r in await rows(stack)} == {"sent"}


async def test_a_pass_that_outlasts_a_members_wait_ends_and_sends_what_fell_due(stack: Stack) -> None:
    """A busy pass (one slow API call) can take longer than a paced member's wait. The wait has
    passed by then: the rows held back for it are sent, the pass ends, and nobody's messages
    stall behind a sender that keeps re-queueing them (it used to, at full CPU, for ever)."""
    await queue_texts(stack, "chenfb", [f"通知{n}" for n in range(30)])
    async with stack.db() as session, session.begin():
        Outbox(session, stack.clock).update_card("code-of-a-tapped-card", replace_name="已处理")
    stack.sim.slow_next("/message/update_template_card", 0, advance=timedelta(seconds=61))
    await asyncio.wait_for(stack.drain(), DEADLINE)
    assert texts(stack, "chenfb") == [f"通知{n}" for n in range(30)], "in order, none held for ever"
    assert [r.status for r in await rows(stack) if r.op == "send"] == ["sent"] * 30
    assert stack.sim.dropped == []


ADMIN_CODES = [  # errcode, WeCom's errmsg (as the simulator answers), paused scope, the admin's task
    (60020, "not allow to access from your ip", "api", "将服务器出口IP加入应用的「企业可信IP」"),
    (48002, "api forbidden", "op:send", "在管理后台为应用开通该接口权限"),
    (81013, "user & party & tag all invalid", "to:wangxm", "检查接收人是否在应用的可见范围内"),
    (82001, "all touser & toparty & totag invalid", "to:wangxm", "检查接收人是否在应用的可见范围内"),
    (60111, "userid not found", "to:wangxm", "接收人的 userid 在通讯录中不存在"),
    (40003, "error", "to:wangxm", "接收人的 userid 无效"),
    (
        60011,
        "no privilege to access/modify contact/party/agent",
        "to:wangxm",
        "应用无权限向该成员发送，检查可见范围",
    ),
    (40001, "invalid credential", "api", "应用 Secret 无效，请检查 [wecom] secret"),
    (40013, "invalid corpid", "api", "CorpID 无效，请检查 [wecom] corp_id"),
]


@pytest.mark.parametrize(("errcode", "errmsg", "scope", "hint"), ADMIN_CODES)
async def test_each_admin_only_code_names_what_the_admin_must_do(
    short_lived: Stack, errcode: int, errmsg: str, scope: str, hint: str
) -> None:
    stack = short_lived
    stack.sim.fail_next("/message/send", errcode)
    await queue_texts(stack, "wangxm", ["等管理员"])
    await stack.drain()
    since = stack.clock.now().isoformat()
    assert stack.app[SENDER].health() == (
        "degraded",
        f"outbox paused: {scope}: errcode {errcode} {errmsg} since {since} ({hint})",
    )
    assert robot_texts(stack) == [
        f"【消息发送暂停】企业微信拒绝发送（错误码 {errcode}：{errmsg}），需要管理员处理：{hint}。"
        "待发消息不会丢失，修复后每 5 分钟自动重试并恢复发送。"
    ]
    row = await only_row(stack)
    error = f"/cgi-bin/message/send: errcode {errcode} {errmsg}"
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, error)
    assert await wait_of(stack, row.id) == timedelta(minutes=5), "probed again after probe_minutes"


async def test_a_removed_robot_key_pauses_only_that_robot_until_it_is_back(short_lived: Stack) -> None:
    stack = short_lived

    def robot_text(key: str, content: str) -> None:
        Outbox(session, stack.clock).webhook(key, {"msgtype": "text", "text": {"content": content}})

    async with stack.db() as session, session.begin():
        robot_text("removed-key", "值班一")
        robot_text("removed-key", "值班二")
        robot_text(ROBOT, "照常")
    await queue_texts(stack, "wangxm", ["照常送达"])
    await stack.drain()
    since = stack.clock.now().isoformat()
    assert stack.app[SENDER].health() == (
        "degraded",
        f"outbox paused: webhook:removed-key: errcode 93000 invalid webhook url since {since}"
        " (群机器人 webhook key 失效，请更换 [duty] webhook_key)",
    )
    assert stack.sim.deliveries("wangxm") == {"照常送达": 1}
    assert robot_texts(stack) == ["照常"], "the other robot works, and is not told a robot is gone"
    keys = [body for path, body in stack.sim.calls if path == "/webhook/send"]
    assert [k["text"]["content"] for k in keys] == ["值班一", "照常"], "值班二 waits for the probe"
    stack.sim.add_robot("removed-key")  # the group's robot is added back with the same key
    advance(stack, minutes=5)
    await stack.drain()
    assert [m["text"]["content"] for m in stack.sim.robots["removed-key"]] == ["值班一", "值班二"]
    assert stack.app[SENDER].health() == ("ok", "")
    assert robot_texts(stack) == ["照常"], "nor told that it is back"


async def test_delivery_resumes_when_the_admin_has_fixed_it_and_the_robot_says_so(short_lived: Stack) -> None:
    """While paused one row at a time probes; a busy answer to the probe holds the rest back too."""
    stack = short_lived
    stack.sim.fail_next("/message/send", 60020)
    await queue_texts(stack, "wangxm", ["第一条", "第二条"])
    await stack.drain()
    advance(stack, minutes=5)
    stack.sim.fail_next("/message/send", -1)
    await stack.drain()
    assert stack.sim.call_count("/message/send") == 2, "only the probe was tried, twice"
    assert stack.app[SENDER].health()[0] == "degraded"
    advance(stack, minutes=5)
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"第一条": 1, "第二条": 1}
    assert stack.app[SENDER].health() == ("ok", "")
    assert robot_texts(stack)[1:] == [
        "【消息发送恢复】企业微信已恢复接受（此前错误码 60020），积压的消息正在补发。"
    ]
    assert [r.attempts for r in await rows(stack) if r.op == "send"] == [3, 1]


async def test_a_resume_sends_what_waits_up_to_a_probe_interval_ahead_at_once(short_lived: Stack) -> None:
    """WeCom refuses our IP, and a text to someone else is in a ten-minute backoff: once the
    probe goes through, it goes too (it was due exactly one probe interval later)."""
    stack = short_lived
    await queue_texts(stack, "zhaoli", ["退避中"])
    backing_off = await only_row(stack)
    async with stack.db() as session, session.begin():  # as after seven busy answers
        await session.exec(
            update(OutboxMessage).where(col(OutboxMessage.id) == backing_off.id).values(attempts=7)
        )
    stack.sim.fail_next("/message/send", -1)
    await stack.drain()
    assert await wait_of(stack, backing_off.id) == timedelta(minutes=10)
    stack.sim.fail_next("/message/send", 60020)
    await queue_texts(stack, "wangxm", ["探测", "积压"])
    await stack.drain()
    probe, held = [r for r in await rows(stack) if r.id != backing_off.id and r.op == "send"]
    assert [await wait_of(stack, r.id) for r in (probe, held)] == [timedelta(minutes=5)] * 2
    assert stack.sim.call_count("/message/send") == 2, "积压 was not tried while paused"
    advance(stack, minutes=5)
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"探测": 1, "积压": 1}
    assert stack.sim.deliveries("zhaoli") == {"退避中": 1}, "due five minutes later, sent now"


# ---- response codes and card updates ------------------------------------------------------


async def approval_cards(stack: Stack) -> list[ApprovalCard]:
    async with stack.db() as session:
        return list((await session.exec(select(ApprovalCard).order_by(col(ApprovalCard.id)))).all())


async def test_each_card_keeps_its_own_response_code(stack: Stack) -> None:
    """Two drafts' cards: each row holds the code WeCom gave for that card, so withdrawing one
    draft greys exactly its card; a card update's answer (no code) changes no row."""
    await say(stack, "wangxm", SUBMISSION)
    await say(stack, "wangxm", SUBMISSION.replace("防汛演练", "消防演练"))
    first, second = await approval_cards(stack)
    assert first.response_code and second.response_code and first.response_code != second.response_code
    codes = {first.id: first.response_code, second.id: second.response_code}
    await say(stack, "wangxm", f"/withdraw {first.draft_id} 重复投稿")
    assert "已撤回" in last_text(stack, "wangxm")
    assert not stack.sim.card(first.task_id).is_active_for("zhaoli")
    assert stack.sim.card(second.task_id).is_active_for("zhaoli")
    assert stack.sim.card(second.task_id).is_active_for("wangxm")
    updates = [body for path, body in stack.sim.calls if path == "/message/update_template_card"]
    assert [u["response_code"] for u in updates] == [first.response_code]
    assert {c.id: c.response_code for c in await approval_cards(stack)} == codes


async def test_close_cards_greys_only_that_subjects_cards_and_late_ones_on_arrival(stack: Stack) -> None:
    def card(task_id: str) -> dict[str, Any]:
        return {
            "card_type": "button_interaction",
            "main_title": {"title": "值班"},
            "task_id": task_id,
            "button_list": [{"text": "收到", "key": f"ack@{task_id}"}],
        }

    async with stack.db() as session, session.begin():
        outbox = Outbox(session, stack.clock)
        outbox.send_card(["zhaoli", "wangxm"], card("inc-a-1"), subject="incident:a")
        outbox.send_card(["zhaoli"], card("inc-a-2"), subject="incident:a")
        outbox.send_card(["zhaoli"], card("inc-b-1"), subject="incident:b")
    await stack.drain()
    stack.sim.fail_next("/message/send", -1)  # the third page of a is still queued when it closes
    async with stack.db() as session, session.begin():
        Outbox(session, stack.clock).send_card(["zhaoli"], card("inc-a-3"), subject="incident:a")
    await stack.drain()
    async with stack.db() as session, session.begin():
        await Outbox(session, stack.clock).close_cards(
            "incident:a", replace_name="已收到·赵丽", keep="inc-a-2"
        )
    await stack.drain()
    assert stack.sim.card("inc-a-1").greyed == {"zhaoli": "已收到·赵丽", "wangxm": "已收到·赵丽"}
    assert stack.sim.card("inc-a-2").greyed == {}, "the card tapped is kept"
    assert stack.sim.card("inc-b-1").greyed == {}, "another subject's card is untouched"
    advance(stack, seconds=5)
    await stack.drain()
    assert stack.sim.card("inc-a-3").greyed == {"zhaoli": "已收到·赵丽"}, "greyed as soon as it arrived"
    assert stack.sim.call_count("/message/update_template_card") == 2


def test_update_card_needs_exactly_one_of_a_label_and_a_card() -> None:
    outbox = Outbox(None, FrozenClock(T0))  # type: ignore[arg-type]  # raises before any row
    with pytest.raises(ValueError, match="exactly one"):
        outbox.update_card("code", replace_name="已处理", card={"card_type": "text_notice"})
    with pytest.raises(ValueError, match="exactly one"):
        outbox.update_card("code")


# ---- 会签: every assignee signs, each one's card greys on its own ------------------------------

COSIGN_STAGES = [
    {"name": "一审", "assignees": ["@submitter", "role:collector"]},
    {"name": "二审", "assignees": ["zhangkz", "sunkz"], "mode": "all"},
    {"name": "三审", "assignees": ["liuzr"]},
]


@pytest.fixture
async def cosign_stack(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    settings = stack_settings(
        database_url,
        {
            "chains": [
                {"category": c, "stages": COSIGN_STAGES, "proofreading": False}
                for c in ("issued", "reprint", "reported")
            ],
        },
    )
    async with running_stack(settings, clock) as running:
        yield running


def card_updates(stack: Stack) -> list[dict[str, Any]]:
    return [body for path, body in stack.sim.calls if path == "/message/update_template_card"]


async def test_cosign_greys_only_the_signers_card_until_everyone_has_signed(cosign_stack: Stack) -> None:
    stack = cosign_stack
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    second = active_card(stack, "zhangkz").payload["template_card"]
    assert second["main_title"]["title"] == "【二审】待审稿件（会签：须全部同意）·保密审查"
    assert active_card(stack, "sunkz").payload["template_card"]["task_id"] == second["task_id"]
    before = len(card_updates(stack))

    await tap(stack, "zhangkz", "同意")
    assert last_text(stack, "zhangkz").endswith("二审的同意。会签尚待：孙科长。")
    (signed,) = card_updates(stack)[before:]
    assert signed["userids"] == ["zhangkz"] and signed["atall"] == 0
    assert signed["button"] == {"replace_name": "二审已同意·张科长"}
    state = stack.sim.card(second["task_id"])
    assert state.greyed == {"zhangkz": "二审已同意·张科长"}
    assert state.is_active_for("sunkz"), "the other signer can still sign on the same card"
    assert cards(stack, "liuzr") == [], "三审 waits for the whole 会签"

    await tap(stack, "sunkz", "同意")
    (closing,) = card_updates(stack)[before + 1 :]
    assert closing["atall"] == 1 and "userids" not in closing
    assert state.greyed == {"zhangkz": "二审已同意·孙科长", "sunkz": "二审已同意·孙科长"}
    assert active_card(stack, "liuzr").payload["template_card"]["main_title"]["title"].startswith("【三审】")
    (card_row,) = [c for c in await approval_cards(stack) if c.task_id == second["task_id"]]
    assert card_row.closed


# ---- `sanshen outbox`: what an operator is shown, and their decisions -------------------------


async def test_stuck_lists_failing_finished_and_long_waiting_rows_only(stack: Stack) -> None:
    now = stack.clock.now()

    def row(
        text: str, *, age: timedelta = timedelta(0), status: str = "pending", attempts: int = 0
    ) -> OutboxMessage:
        return OutboxMessage(
            created_at=now - age,
            not_before=now - age,
            op="send",
            recipients="wangxm",
            status=status,
            attempts=attempts,
            payload={"touser": "wangxm", "msgtype": "text", "text": {"content": text}},
        )

    async with stack.db() as session, session.begin():
        session.add_all(
            [
                row("刚排队"),
                row("等了十分钟", age=timedelta(minutes=10)),
                row("等了十分钟零一秒", age=timedelta(minutes=10, seconds=1)),
                row("重试中", attempts=1),
                row("失败", status="failed", attempts=1),
                row("过期", status="expired"),
                row("已送达", status="sent", attempts=1),
                row("已作废", status="discarded"),
            ]
        )
    async with stack.db() as session:
        listed = await stuck_messages(session, now)
    assert [r.payload["text"]["content"] for r in listed] == ["等了十分钟零一秒", "重试中", "失败", "过期"]


async def test_a_long_discard_reason_is_kept_to_500_characters(stack: Stack) -> None:
    """The reason goes into last_error (500 characters: PostgreSQL refuses more) and, whole,
    into the audit entry."""
    await queue_texts(stack, "wangxm", ["待作废"])
    (waiting,) = await rows(stack)
    reason = "接收人" * 300
    async with stack.db() as session, session.begin():
        await discard_message(session, waiting.id or 0, stack.clock.now(), reason=reason, by="chenfb")
    (discarded,) = await rows(stack)
    assert discarded.last_error == f"discarded by chenfb: {reason}"[:500]
    async with stack.db() as session:
        entry = (await session.exec(select(AuditEntry).where(AuditEntry.action == "outbox_discard"))).one()
    assert entry.details["reason"] == reason


async def test_retry_and_discard_refuse_what_is_delivered_or_missing(stack: Stack) -> None:
    await queue_texts(stack, "wangxm", ["已送达", "待作废"])
    sent, waiting = await rows(stack)
    async with stack.db() as session, session.begin():
        sent.status = "sent"
        session.add(sent)
    now = stack.clock.now()
    async with stack.db() as session, session.begin():
        with pytest.raises(OutboxDecisionError, match=f"^没有可重试的第 {sent.id} 条消息（状态 sent）$"):
            await retry_message(session, sent.id or 0, now)
        with pytest.raises(OutboxDecisionError, match="^没有可重试的第 999 条消息$"):
            await retry_message(session, 999, now)
        with pytest.raises(OutboxDecisionError, match=f"^没有可作废的第 {sent.id} 条消息（状态 sent）$"):
            await discard_message(session, sent.id or 0, now, reason="重复", by="chenfb")
        with pytest.raises(OutboxDecisionError, match="^没有可作废的第 999 条消息$"):
            await discard_message(session, 999, now, reason="重复", by="chenfb")
        await discard_message(session, waiting.id or 0, now, reason="接收人已离职", by="chenfb")
    await stack.drain()
    assert stack.sim.inbox("wangxm") == [], "a discarded message is never sent"
    (_, discarded) = await rows(stack)
    assert (discarded.status, discarded.last_error) == ("discarded", "discarded by chenfb: 接收人已离职")
    async with stack.db() as session:
        entry = (await session.exec(select(AuditEntry).where(AuditEntry.action == "outbox_discard"))).one()
    assert (entry.actor, entry.details) == (
        "chenfb",
        {
            "outbox_id": waiting.id,
            "op": "send",
            "recipients": "wangxm",
            "was": "pending",
            "reason": "接收人已离职",
            "attempts": 0,
        },
    )
    async with stack.db() as session, session.begin():
        with pytest.raises(OutboxDecisionError, match="（状态 discarded）$"):
            await retry_message(session, waiting.id or 0, now)


class WatchedIdle(asyncio.Event):
    """The dispatcher's idle event, saying when somebody starts waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited = asyncio.Event()

    async def wait(self) -> Any:
        self.awaited.set()
        return await super().wait()


async def test_the_background_loop_holds_messages_back_while_a_callback_is_applied(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callbacks first: WeCom re-sends an answer that takes over 5 s; a message can wait."""
    monkeypatch.setattr(outbox_module, "GIVE_WAY_SECONDS", DEADLINE * 2)
    await queue_texts(stack, "wangxm", ["审核通知"])
    idle = WatchedIdle()  # clear: a callback is being applied
    sender = stack.app[SENDER]
    sender.give_way_to(idle)
    passing = asyncio.create_task(sender.drain(give_way=True))
    await asyncio.wait_for(idle.awaited.wait(), DEADLINE)
    assert texts(stack, "wangxm") == []
    assert [(r.status, r.claim_token) for r in await rows(stack)] == [("pending", "")], "not even claimed"
    idle.set()  # the callback is answered
    await asyncio.wait_for(passing, DEADLINE)
    assert texts(stack, "wangxm") == ["审核通知"]
    await asyncio.wait_for(sender.drain(give_way=True), DEADLINE)  # idle: nothing waits
