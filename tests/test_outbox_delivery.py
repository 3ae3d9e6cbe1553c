"""Outbox delivery under faults: nothing dropped, nothing doubled. WeCom misbehaves
through the simulator's fault injection; time is the injected clock, never wall time (only a
slow answer waits a fraction of a real second so that the client's own timeout fires)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.exports.runner import export_file
from bot.keys import HTTP, SENDER, WECOM
from bot.wecom.client import WeComClient
from bot.wecom.outbox import CLAIM_FOR, Outbox, OutboxSender, _Fenced
from storage import direct
from storage.models import OutboxMessage

ROBOT = "dutyrobot"


@pytest.fixture
async def robot_stack(database_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    settings = stack_settings(database_url, {"duty": {"webhook_key": ROBOT}})
    async with running_stack(settings, clock) as stack:
        stack.sim.add_robot(ROBOT)
        yield stack


async def queue_texts(stack: Stack, user: str, messages: list[str]) -> None:
    async with stack.db() as session, session.begin():
        outbox = Outbox(session, stack.clock)
        for text in messages:
            outbox.send_text([user], text)


async def queue_card(stack: Stack, user: str, task_id: str) -> None:
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "一审"},
        "task_id": task_id,
        "button_list": [{"text": "同意", "key": f"ok@{task_id}"}],
    }
    async with stack.db() as session, session.begin():
        Outbox(session, stack.clock).send_card([user], card)


async def rows(stack: Stack) -> list[OutboxMessage]:
    async with stack.db() as session:
        return list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())  # type: ignore[arg-type]


def advance(stack: Stack, **kwargs: float) -> None:
    stack.clock.advance(**kwargs)  # type: ignore[attr-defined]


def robot_texts(stack: Stack) -> list[str]:
    return [m["text"]["content"] for m in stack.sim.robots[ROBOT]]


async def counted_in_a_pass(stack: Stack, name: str, which: Callable[..., bool] = lambda *_: True) -> int:
    """How many engine events `name` one outbox pass causes ("commit": its transactions, each a
    wait in line on SQLite), of those `which` accepts (given the event's arguments)."""
    engine = stack.db.kw["bind"].sync_engine
    seen = 0

    def count(*args: Any) -> None:
        nonlocal seen
        seen += 1 if which(*args) else 0

    event.listen(engine, name, count)
    try:
        await stack.drain()
    finally:
        event.remove(engine, name, count)
    return seen


async def statements_in_a_pass(stack: Stack, which: Callable[[str], bool]) -> int:
    """How many SQL statements one outbox pass runs that `which` accepts (given their SQL):
    SQLAlchemy's and those storage.direct runs on the driver's connection."""
    engine = stack.db.kw["bind"].sync_engine
    seen = 0

    def count(sql: str) -> None:
        nonlocal seen
        seen += 1 if which(sql) else 0

    def through_sqlalchemy(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        count(sql)

    event.listen(engine, "before_cursor_execute", through_sqlalchemy)
    try:
        with direct.observing(count):
            await stack.drain()
    finally:
        event.remove(engine, "before_cursor_execute", through_sqlalchemy)
    return seen


def sender_with(
    stack: Stack, *, timeout: float = 10.0, cls: type[OutboxSender] = OutboxSender
) -> OutboxSender:
    """Another sender on the same database (another instance, or the bot after a restart)."""
    client = WeComClient(
        stack.app[HTTP],
        base_url=stack.settings.wecom.api_base,
        corp_id=stack.settings.wecom.corp_id,
        secret=stack.settings.wecom.secret,
        agent_id=stack.settings.wecom.agent_id,
        clock=stack.clock,
        timeout=timeout,
    )
    return cls(db=stack.db, wecom=client, clock=stack.clock, settings=stack.settings, export_file=export_file)


async def test_outage_longer_than_the_old_retry_budget_then_recovery(robot_stack: Stack) -> None:
    stack = robot_stack
    stack.sim.outage(503)
    texts = [f"通知{n}" for n in range(4)]
    await queue_texts(stack, "wangxm", texts)
    for _ in range(24):  # two hours of HTTP 503, far beyond 0/5/15/…/637 s
        await stack.drain()
        advance(stack, minutes=5)
    assert stack.sim.deliveries("wangxm") == {}
    assert {r.status for r in await rows(stack)} == {"pending"}
    assert max(r.not_before - stack.clock.now() for r in await rows(stack)) <= timedelta(minutes=10)
    stack.sim.end_outage()
    advance(stack, minutes=10)
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {t: 1 for t in texts}
    assert all(r.status == "sent" and r.msgid for r in await rows(stack))


async def test_token_expired_twice_is_refreshed_and_delivered(robot_stack: Stack) -> None:
    stack = robot_stack
    stack.sim.fail_next("/message/send", 42001, times=2)
    await queue_texts(stack, "wangxm", ["令牌过期也要送达"])
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"令牌过期也要送达": 1}
    stack.sim.fail_next("/message/send", 40014, times=5)  # longer than one call's tries
    await queue_texts(stack, "wangxm", ["再来一条"])
    for _ in range(3):
        await stack.drain()
        advance(stack, seconds=30)
    assert stack.sim.deliveries("wangxm") == {"令牌过期也要送达": 1, "再来一条": 1}


async def test_untrusted_ip_pauses_tells_admins_and_resumes_by_itself(robot_stack: Stack) -> None:
    stack = robot_stack
    sender = stack.app[SENDER]
    stack.sim.fail_next("/message/send", 60020, times=10_000)
    await queue_texts(stack, "wangxm", ["第一条", "第二条"])
    await stack.drain()
    status, reason = sender.health()
    assert status == "degraded" and "60020" in reason
    assert sender.health_json()["status"] == "degraded"
    async with aiohttp.ClientSession() as http, http.get(f"{stack.bot_url}/healthz") as resp:
        health = await resp.json()
    assert health["status"] == "degraded" and "60020" in health["reason"], "what a monitor sees"
    assert len(robot_texts(stack)) == 1 and "60020" in robot_texts(stack)[0]
    assert "可信IP" in robot_texts(stack)[0]
    assert stack.sim.call_count("/message/send") == 1, "the second message waits for the probe"
    for _ in range(6):  # half an hour, still broken: a probe every 5 minutes, no more alerts
        advance(stack, minutes=5)
        await stack.drain()
    assert 4 <= stack.sim.call_count("/message/send") <= 8
    assert len(robot_texts(stack)) == 1
    assert {r.status for r in await rows(stack) if r.op == "send"} == {"pending"}
    stack.sim.clear_failures()  # the admin adds the server's IP
    advance(stack, minutes=5)
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"第一条": 1, "第二条": 1}
    assert sender.health() == ("ok", "")
    assert "恢复" in robot_texts(stack)[-1]


async def test_unknown_user_pauses_only_that_recipient(robot_stack: Stack) -> None:
    stack = robot_stack
    await queue_texts(stack, "ghost", ["找不到的人"])
    await queue_texts(stack, "wangxm", ["正常的人"])
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"正常的人": 1}
    status, reason = stack.app[SENDER].health()
    assert status == "degraded" and "81013" in reason and "to:ghost" in reason
    stack.sim.add_member("ghost", "新同事")  # added to the app's visible scope
    advance(stack, minutes=5)
    await stack.drain()
    assert stack.sim.deliveries("ghost") == {"找不到的人": 1}
    assert stack.app[SENDER].health()[0] == "ok"


async def test_texts_expire_after_their_lifetime_and_admins_are_told(robot_stack: Stack) -> None:
    stack = robot_stack
    stack.sim.fail_next("/message/send", -1, times=10_000)
    await queue_texts(stack, "wangxm", ["过时的提醒"])
    await queue_card(stack, "wangxm", "card-exp-1")
    for _ in range(26):
        await stack.drain()
        advance(stack, hours=1)
    await stack.drain()
    text_row, card_row = [r for r in await rows(stack) if r.op == "send"]
    assert text_row.status == "expired" and "-1" in text_row.last_error
    assert card_row.status == "pending", "a card lives 72 h"
    assert any("过时" not in t and "expired" in t for t in robot_texts(stack))
    stack.sim.clear_failures()
    advance(stack, minutes=10)
    await stack.drain()
    assert stack.sim.deliveries("wangxm", "template_card") == {"card-exp-1": 1}
    assert stack.sim.deliveries("wangxm") == {}


async def test_slow_success_past_the_client_timeout_is_delivered_once(robot_stack: Stack) -> None:
    stack = robot_stack
    sender = sender_with(stack, timeout=0.3)
    stack.sim.slow_next("/message/send", 0.8)
    await queue_texts(stack, "wangxm", ["慢慢送达"])
    await queue_card(stack, "zhaoli", "card-slow-1")
    stack.sim.slow_next("/message/send", 0.8, times=2)
    await sender.drain()  # both time out on our side, both reached the phones
    assert stack.sim.deliveries("wangxm") == {"慢慢送达": 1}
    assert {r.status for r in await rows(stack)} == {"pending"}
    advance(stack, seconds=10)
    await sender.drain()
    assert stack.sim.deliveries("wangxm") == {"慢慢送达": 1}
    assert stack.sim.deliveries("zhaoli", "template_card") == {"card-slow-1": 1}
    text_row, card_row = [r for r in await rows(stack) if r.op == "send"]
    assert text_row.status == card_row.status == "sent"
    assert text_row.msgid == stack.sim.inbox("wangxm")[0].msgid


class Crash(BaseException):
    """The process dies after WeCom accepted the message and before the row is marked (a
    BaseException, like SystemExit: nothing in the bot catches it)."""


class CrashingSender(OutboxSender):
    async def _mark_sent(self, *args: Any, **kwargs: Any) -> None:
        raise Crash()


async def test_crash_between_send_and_mark_is_not_sent_again(robot_stack: Stack) -> None:
    stack = robot_stack
    await queue_texts(stack, "wangxm", ["只送一次"])
    await queue_card(stack, "zhaoli", "card-crash-1")
    doomed = sender_with(stack, cls=CrashingSender)
    with pytest.raises(Crash):
        await doomed.drain()
    with pytest.raises(Crash):
        await doomed.drain()
    assert stack.sim.deliveries("wangxm") == {"只送一次": 1}
    assert stack.sim.deliveries("zhaoli", "template_card") == {"card-crash-1": 1}
    await stack.drain()  # the restarted bot: the rows are still claimed by the dead one
    assert {r.status for r in await rows(stack)} == {"pending"}
    advance(stack, seconds=CLAIM_FOR.total_seconds() + 1)
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"只送一次": 1}
    assert stack.sim.deliveries("zhaoli", "template_card") == {"card-crash-1": 1}
    assert {r.status for r in await rows(stack)} == {"sent"}


async def test_a_stale_claimer_can_neither_send_nor_mark(robot_stack: Stack) -> None:
    stack = robot_stack
    await queue_texts(stack, "wangxm", ["围栏"])
    slow = sender_with(stack)
    claimed = await slow._claim_next()
    assert claimed is not None
    row, token = claimed
    advance(stack, seconds=CLAIM_FOR.total_seconds() + 1)  # the first holder stalled
    await stack.drain()
    with pytest.raises(_Fenced):
        await slow._perform(row, token)
    with pytest.raises(_Fenced):
        await slow._mark_sent(row, token, ["wangxm"], {})
    assert stack.sim.deliveries("wangxm") == {"围栏": 1}


async def test_a_renewed_claim_keeps_the_row_for_a_whole_minute_more(robot_stack: Stack) -> None:
    """A sender that claimed a robot message, was held up 40 s before calling (past the claim's
    fresh part), renews it right before the call: the row is its own for a minute from then.
    Another sender looking 70 s after the first claim (the first minute is over) leaves it alone,
    so the robot gets the message once and the slow sender still marks it sent."""
    stack = robot_stack
    await queue_robot_text(stack)
    slow = sender_with(stack)
    claimed = await slow._claim_next()
    assert claimed is not None
    row, token = claimed
    advance(stack, seconds=40)
    result = await slow._perform(row, token)
    advance(stack, seconds=30)
    await stack.drain()
    assert robot_texts(stack) == ["值班提醒"], "nobody took the renewed row over"
    await slow._mark_sent(row, token, [], result)
    assert [r.status for r in await rows(stack)] == ["sent"]
    advance(stack, seconds=CLAIM_FOR.total_seconds())
    await stack.drain()
    assert robot_texts(stack) == ["值班提醒"]


async def queue_retried_text(stack: Stack) -> str:
    """A text whose first try failed (system busy): its retry goes without a fresh check."""
    await queue_texts(stack, "wangxm", ["重试围栏"])
    stack.sim.fail_next("/message/send", -1)
    await stack.drain()
    advance(stack, seconds=5)
    return "/message/send"


async def queue_card_update(stack: Stack) -> str:
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "一审"},
        "task_id": "card-fence",
        "button_list": [{"text": "同意", "key": "ok@card-fence"}],
    }
    async with stack.db() as session, session.begin():
        Outbox(session, stack.clock).send_card(["zhaoli"], card, subject="draft:fence")
    await stack.drain()
    async with stack.db() as session, session.begin():
        await Outbox(session, stack.clock).close_cards("draft:fence", replace_name="已处理")
    return "/message/update_template_card"


async def queue_robot_text(stack: Stack) -> str:
    async with stack.db() as session, session.begin():
        Outbox(session, stack.clock).webhook(ROBOT, {"msgtype": "text", "text": {"content": "值班提醒"}})
    return "/webhook/send"


async def queue_ledger(stack: Stack) -> str:
    """The month's ledger for chenfb: built by the sender after its claim (which can take a
    while), then uploaded and sent as a file."""
    start = stack.clock.now()
    async with stack.db() as session, session.begin():
        Outbox(session, stack.clock).send_export(
            ["chenfb"],
            kind="ledger",
            start=start,
            end=start,
            label="11月",
            slug="2026-11",
            unit="示范市人民政府办公室",
            timezone="Asia/Shanghai",
        )
    return "/media/upload"


@pytest.mark.parametrize("queue", [queue_retried_text, queue_card_update, queue_robot_text, queue_ledger])
async def test_a_stale_claimer_calls_wecom_for_nothing_another_sender_took_over(
    robot_stack: Stack, queue: Any
) -> None:
    """A retry, a card update, a robot message and an export's upload are each checked to be
    still ours right before the call: a sender that stalled past its claim calls WeCom for none."""
    stack = robot_stack
    path = await queue(stack)
    calls_before = stack.sim.call_count(path)
    slow = sender_with(stack)
    claimed = await slow._claim_next()
    assert claimed is not None
    row, token = claimed
    advance(stack, seconds=CLAIM_FOR.total_seconds() + 1)
    await stack.drain()
    assert stack.sim.call_count(path) == calls_before + 1, "the sender that took over called once"
    with pytest.raises(_Fenced):
        await slow._perform(row, token)
    assert stack.sim.call_count(path) == calls_before + 1, "the stale one called nothing"
    assert [r.status for r in await rows(stack) if r.id == row.id] == ["sent"]


async def test_a_robot_message_costs_one_transaction_after_the_first(robot_stack: Stack) -> None:
    """Each message is marked sent in the transaction that claims the next one, and the claim,
    taken a moment before the call, is not renewed first: every transaction more would be one
    more wait in line with the callbacks on SQLite, and would prove nothing."""
    stack = robot_stack
    async with stack.db() as session, session.begin():
        for n in range(10):
            Outbox(session, stack.clock).webhook(ROBOT, {"msgtype": "text", "text": {"content": f"值班{n}"}})
    commits = await counted_in_a_pass(stack, "commit")
    assert robot_texts(stack) == [f"值班{n}" for n in range(10)]
    assert commits == 1 + 10 + 1, "the first claim, a mark (and the next claim) each, a last look"


async def test_identical_texts_queued_twice_both_arrive(robot_stack: Stack) -> None:
    """The duplicate check must not swallow a second, separate message with the same words."""
    stack = robot_stack
    await queue_texts(stack, "wangxm", ["暂无待办"])
    await stack.drain()
    advance(stack, minutes=1)
    await queue_texts(stack, "wangxm", ["暂无待办"])
    await stack.drain()
    assert stack.sim.deliveries("wangxm") == {"暂无待办": 2}


async def test_two_senders_with_a_slow_api_deliver_each_once(postgres_url: str, clock: FrozenClock) -> None:
    settings = stack_settings(postgres_url)
    async with running_stack(settings, clock) as stack:
        users = ["wangxm", "zhaoli", "zhangkz", "sunkz", "liuzr", "chenfb"]
        for user in users:
            await queue_texts(stack, user, [f"{user}-{n}" for n in range(10)])
        # 1.5 s per send in simulated time: 60 sends take 90 s, longer than a claim
        stack.sim.slow_next("/message/send", 0.01, times=10_000, advance=timedelta(seconds=1.5))
        first, second = sender_with(stack), sender_with(stack)
        for _ in range(3):
            await asyncio.gather(first.drain(), second.drain())
            advance(stack, minutes=1)
        for user in users:
            assert stack.sim.deliveries(user) == {f"{user}-{n}": 1 for n in range(10)}, user
        sends = Counter(
            body.get("text", {}).get("content") for path, body in stack.sim.calls if path == "/message/send"
        )
        assert set(sends.values()) == {1}, "no message was even attempted twice"
        assert stack.app[WECOM] is not None
