"""Every bad input is a 4xx, never a 5xx: odd fields inside validly signed callbacks, numbers
in commands and card keys out of the databases' range, stale URL verification."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from xml.sax.saxutils import escape

import aiohttp
import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.wecom.events import CONTENT_BYTES
from storage.models import Draft, OutboxMessage, ProcessedCallback
from tests.flow import META, last_text, say, texts
from tests.test_freshness import FRESHNESS

STAFF = "chenfb"  # publisher and admin: every command is his to run


def callback_xml(stack: Stack, **fields: str | None) -> str:
    """A text message from STAFF with `fields` replacing (or, given None, leaving out) its elements;
    values are written as they are (escape them yourself)."""
    base: dict[str, str | None] = {
        "ToUserName": stack.settings.wecom.corp_id,
        "FromUserName": STAFF,
        "CreateTime": str(int(stack.clock.now().timestamp())),
        "MsgType": "text",
        "Content": "/help",
        "MsgId": "424242",
        "AgentID": str(stack.settings.wecom.agent_id),
    }
    base.update(fields)
    return "<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in base.items() if v is not None) + "</xml>"


def card_xml(stack: Stack, **fields: str | None) -> str:
    return callback_xml(
        stack,
        **{
            "MsgType": "event",
            "Content": None,
            "MsgId": None,
            "Event": "template_card_event",
            "EventKey": "rv:approve:1",
            "TaskId": "sanshen-rv-1-abc",
            "CardType": "button_interaction",
            "ResponseCode": "code-1",
            **fields,
        },
    )


def menu_xml(stack: Stack, event: str, key: str) -> str:
    return callback_xml(stack, MsgType="event", Content=None, MsgId=None, Event=event, EventKey=key)


async def counts(stack: Stack) -> tuple[int, int, int]:
    """Rows of the dedupe table, drafts and outbox."""
    found = []
    async with stack.db() as session:
        for table in (ProcessedCallback, Draft, OutboxMessage):
            found.append((await session.exec(select(func.count()).select_from(table))).one())  # type: ignore[call-overload]
    return found[0], found[1], found[2]


# ------------------------------------------------------------------ fields of a signed callback

BAD_FIELDS: list[tuple[str, Callable[[Stack], str]]] = [
    ("MsgId", lambda s: callback_xml(s, MsgId="abc")),
    ("MsgId", lambda s: callback_xml(s, MsgId=str(2**63))),  # beyond int64
    ("MsgId", lambda s: callback_xml(s, MsgId="-5")),
    ("MsgId", lambda s: callback_xml(s, MsgId="１２３")),  # full-width digits
    ("MsgId", lambda s: callback_xml(s, MsgId=None)),  # a text message without one
    ("MsgId", lambda s: callback_xml(s, MsgId="9" * 5000)),  # more digits than int() takes
    ("MsgId", lambda s: callback_xml(s, MsgId="<a>1</a>")),  # an element, not a value
    ("CreateTime", lambda s: callback_xml(s, CreateTime="abc")),
    ("CreateTime", lambda s: callback_xml(s, CreateTime="0")),
    ("CreateTime", lambda s: callback_xml(s, CreateTime=str(10**15))),
    ("CreateTime", lambda s: callback_xml(s, CreateTime=None)),
    ("FromUserName", lambda s: callback_xml(s, FromUserName="w" * 10_000)),
    ("FromUserName", lambda s: callback_xml(s, FromUserName="w" * 65)),
    ("FromUserName", lambda s: callback_xml(s, FromUserName="王小明")),
    ("FromUserName", lambda s: callback_xml(s, FromUserName="chen fb")),
    ("FromUserName", lambda s: callback_xml(s, FromUserName="")),
    ("FromUserName", lambda s: callback_xml(s, FromUserName=None)),
    ("FromUserName", lambda s: callback_xml(s, FromUserName="chenfb</FromUserName><FromUserName>x")),
    ("ToUserName", lambda s: callback_xml(s, ToUserName="c" * 65)),
    ("ToUserName", lambda s: callback_xml(s, ToUserName=None)),
    ("AgentID", lambda s: callback_xml(s, AgentID="abc")),
    ("AgentID", lambda s: callback_xml(s, AgentID=str(2**31))),
    ("MsgType", lambda s: callback_xml(s, MsgType="t" * 65)),
    ("MsgType", lambda s: callback_xml(s, MsgType="text/plain")),
    ("Content", lambda s: callback_xml(s, Content="长" * (CONTENT_BYTES // 3 + 1))),
    ("Content", lambda s: callback_xml(s, Content="<b>bold</b>")),
    ("TaskId", lambda s: card_xml(s, TaskId="t" * 129)),
    ("TaskId", lambda s: card_xml(s, TaskId="task id")),
    ("TaskId", lambda s: card_xml(s, TaskId=None)),
    ("EventKey", lambda s: card_xml(s, EventKey="k" * 1025)),
    ("EventKey", lambda s: card_xml(s, EventKey="键" * 342)),  # 1026 bytes
    ("EventKey", lambda s: card_xml(s, EventKey=None)),
    ("EventKey", lambda s: menu_xml(s, "click", "CMD_" + "X" * 125)),  # 129 bytes
    ("EventKey", lambda s: menu_xml(s, "view", "https://x.cn/" + "a" * 1012)),  # 1025 bytes
    ("ResponseCode", lambda s: card_xml(s, ResponseCode="c" * 201)),
    ("ResponseCode", lambda s: card_xml(s, ResponseCode="a code")),
    ("CardType", lambda s: card_xml(s, CardType="x" * 65)),
    ("Event", lambda s: card_xml(s, Event="e" * 65)),
    ("Event", lambda s: card_xml(s, Event=None)),
]


async def test_a_bad_field_is_400_and_changes_nothing(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    for field, make in BAD_FIELDS:
        caplog.clear()
        before = await counts(stack)
        with caplog.at_level(logging.INFO):
            result = await stack.sim.post_raw(make(stack))
        assert result.status == 400, (field, result)
        await stack.drain()
        assert await counts(stack) == before, field
        assert not stack.sim.inbox(STAFF), field
        refusals = [m for m in caplog.messages if "callback refused" in m]
        assert len(refusals) == 1 and field in refusals[0], (field, refusals)
        assert all(len(m) < 300 for m in caplog.messages), field  # the log names the field, not its value
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], field


async def test_a_refused_callback_does_not_use_up_its_dedupe_key(stack: Stack) -> None:
    """The same MsgId with a bad AgentID first, then well formed: the second one is answered."""
    result = await stack.sim.post_raw(callback_xml(stack, AgentID="abc", MsgId="777"))
    assert result.status == 400
    result = await stack.sim.post_raw(callback_xml(stack, MsgId="777"))
    assert result.status == 200
    await stack.drain()
    assert len(stack.sim.inbox(STAFF)) == 1  # /help answered once


AT_THE_LIMITS: list[Callable[[Stack], str]] = [
    lambda s: callback_xml(s, MsgId=str(2**63 - 1), FromUserName="a" * 64),  # a stranger
    lambda s: callback_xml(s, CreateTime="1000000000", MsgId="1"),
    lambda s: callback_xml(s, Content=None, MsgId="2"),  # an empty text
    lambda s: callback_xml(s, Content="长" * (CONTENT_BYTES // 3), MsgId="3"),
    lambda s: card_xml(s, TaskId="t" * 128, EventKey="rv:approve:" + "1" * 1013),  # 1024 bytes
    lambda s: card_xml(s, TaskId="t" * 127, EventKey="键" * 341),  # 1023 bytes
    lambda s: card_xml(s, ResponseCode=None, CardType=None),
    lambda s: menu_xml(s, "click", "CMD_" + "X" * 124),  # 128 bytes
    lambda s: menu_xml(s, "view", "https://x.cn/" + "a" * 1011),  # 1024 bytes
    lambda s: menu_xml(s, "enter_agent", ""),
    lambda s: callback_xml(s, MsgType="image", Content=None, PicUrl="https://x.cn/a.png", MsgId="4"),
    lambda s: callback_xml(s, MsgType="file", Content=None, MsgId="5"),  # not a type wechatpy knows
]


async def test_fields_at_their_limits_are_accepted(stack: Stack) -> None:
    for number, xml in enumerate(AT_THE_LIMITS, start=1):
        result = await stack.sim.post_raw(xml(stack))
        assert result.status == 200, (number, result)
        assert (await counts(stack))[0] == number  # each one applied, under its own dedupe key


# ------------------------------------------------------------------ numbers in commands and card keys

HUGE = "9223372036854775808"  # 2**63: beyond PostgreSQL's integer and bigint


OUT_OF_RANGE = [
    f"/approve {HUGE}",
    "/approve 2147483648",  # one more than INTEGER holds
    "/approve 0",
    "/approve ²",  # str.isdigit says yes, int() says no
    f"/reject {HUGE} 理由",
    f"/draft {HUGE}",
    f"/draft 1 {HUGE}",
    "/draft 1 ³",
    f"/withdraw {HUGE}",
    f"/remind {HUGE}",
    f"/return {HUGE} 一审 理由",
    f"/return 1 {HUGE} 理由",
    "/return 1 ² 理由",
    f"/proof {HUGE}",
    f"/published {HUGE} 网站",
    f"/incidents {HUGE}",
    "/incidents ²",
    f"/duty {HUGE}",
    "/duty ²",
    "/duty 32",
    f"/mine {HUGE}",
    "/mine ¹",
    "/mine " + "9" * 6000,  # more digits than int() takes
]


async def test_numbers_out_of_range_get_the_usage(stack: Stack) -> None:
    for sent, command in enumerate(OUT_OF_RANGE, start=1):
        await say(stack, STAFF, command)
        answer = last_text(stack, STAFF)
        assert "格式不对" in answer and command.split()[0] in answer, (command, answer)
        assert len(texts(stack, STAFF)) == sent, command
    async with stack.db() as session:
        assert (await session.exec(select(Draft))).all() == []


async def test_card_keys_out_of_range_are_unknown_cards(stack: Stack) -> None:
    keys = [f"rv:approve:{HUGE}", "rv:approve:²", f"pf:passed:{HUGE}", f"in:ack:{HUGE}", f"dy:done:{HUGE}"]
    for key in keys:
        result = await stack.sim.post_raw(card_xml(stack, EventKey=escape(key)))
        assert result.status == 200, key
        await stack.drain()
        answer = last_text(stack, STAFF)
        assert "卡片" in answer and "内部错误" not in answer, (key, answer)
    assert len(texts(stack, STAFF)) == len(keys)


# ------------------------------------------------------------------ URL verification


async def test_url_verification_has_the_timestamp_window(stack: Stack) -> None:
    crypto = stack.sim.crypto
    echo = "1288432023552776189"
    encrypted = crypto.encrypt(echo)
    url = stack.sim.callback_url or ""
    async with aiohttp.ClientSession() as http:
        for offset, status in [(-86_400, 403), (86_400, 403), (-301, 403), (-299, 200), (0, 200)]:
            ts, nonce = str(int(stack.clock.now().timestamp()) + offset), "5"
            query = {
                "msg_signature": crypto.sign(ts, nonce, encrypted),
                "timestamp": ts,
                "nonce": nonce,
                "echostr": encrypted,
            }
            async with http.get(url, params=query) as resp:
                assert resp.status == status, offset
                assert (await resp.text() == echo) == (status == 200), offset


async def test_a_timestamp_that_is_no_number_is_400(stack: Stack) -> None:
    crypto = stack.sim.crypto
    encrypted = crypto.encrypt("123")
    url = stack.sim.callback_url or ""
    async with aiohttp.ClientSession() as http:
        for ts in ["abc", "-5", "١٢", "9" * 400]:
            query = {"msg_signature": crypto.sign(ts, "5", encrypted), "timestamp": ts, "nonce": "5"}
            async with http.get(url, params={**query, "echostr": encrypted}) as resp:
                assert resp.status == 400, ts
            async with http.post(
                url, params=query, data=f"<xml><Encrypt>{encrypted}</Encrypt></xml>"
            ) as resp:
                assert resp.status == 400, ts
    assert (await counts(stack))[0] == 0


# ------------------------------------------------------------------ random fields (property style)

ITERATIONS = 300
TWICE = "\x00twice"  # random_value's answer for "the element twice"


def random_value(rng: random.Random, valid: str) -> str | None:
    """Something for one element: often the valid value, else anything at all (None: left out)."""
    pick = rng.randrange(16)
    if pick < 6:
        return escape(valid)
    if pick == 6:
        return None
    if pick == 7:
        return ""
    if pick == 8:
        return str(rng.choice([-1, 0, 2**31, 2**32, 2**63, 2**64, -(2**63), 10**30, rng.randrange(10**12)]))
    if pick == 9:
        return escape("".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(rng.randrange(1, 300))))
    if pick == 10:
        return escape(rng.choice("wx_王审校é🙂٣²") * rng.choice([1, 63, 64, 65, 129, 1025, 10_000]))
    if pick == 11:  # control characters: XML 1.0 has no place for them
        return "".join(chr(rng.randrange(0, 0x20)) for _ in range(rng.randrange(1, 5)))
    if pick == 12:
        return f"<a>{escape(valid)}</a>"  # an element instead of a value
    if pick == 13:
        return TWICE
    if pick == 14:
        return escape(valid) + " "
    return "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 25)))


def random_payload(rng: random.Random, stack: Stack, msgid: int) -> str:
    now = int(stack.clock.now().timestamp())
    user = rng.choice(["chenfb", "zhangkz", "wangxm", "visitor1"])
    number = rng.choice(["1", "0", "2147483647", "2147483648", HUGE, "²", "#1", "-1", "9" * 50])
    kind = rng.choice(["text", "text", "card", "click", "view", "enter_agent", "image", "weird"])
    fields: dict[str, str] = {
        "ToUserName": stack.settings.wecom.corp_id,
        "FromUserName": user,
        "CreateTime": str(now),
        "AgentID": str(stack.settings.wecom.agent_id),
    }
    if kind in ("text", "image", "weird"):
        command = rng.choice(
            ["/approve", "/draft", "/duty", "/mine", "/incidents", "/return", "/withdraw", "/submit"]
        )
        content = f"{command} {number} {rng.choice(['', number, '一审 理由'])}"
        if command == "/submit":
            content = f"/submit 稿件{number}\n{META}正文"
        fields |= {"MsgType": {"weird": "location"}.get(kind, kind), "MsgId": str(msgid), "Content": content}
    else:
        event = {"card": "template_card_event"}.get(kind, kind)
        fields |= {"MsgType": "event", "Event": event}
        if kind == "card":
            prefix = rng.choice(["rv:approve", "rv:reject", "pf:passed", "in:ack", "dy:done", "zz"])
            fields |= {
                "EventKey": f"{prefix}:{number}",
                "TaskId": f"sanshen-rv-{msgid}",
                "CardType": "button_interaction",
                "ResponseCode": f"code{msgid}",
            }
        elif kind != "enter_agent":
            fields["EventKey"] = "CMD_PENDING" if kind == "click" else "https://x.cn/app"
    elements = []
    for name, valid in fields.items():
        value = random_value(rng, valid) if rng.random() < 0.3 else escape(valid)
        if value == TWICE:
            elements += [f"<{name}>{escape(valid)}</{name}>"] * 2
        elif value is not None:
            elements.append(f"<{name}>{value}</{name}>")
    if rng.random() < 0.05:
        elements.append("<Extra>" + "z" * rng.choice([10, 100_000]) + "</Extra>")
    rng.shuffle(elements)
    return "<xml>" + "".join(elements) + "</xml>"


async def test_random_fields_are_200_or_4xx_and_a_4xx_changes_nothing(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    stack.sim.add_member("visitor1", "访客")
    rng = random.Random(20261123)
    statuses: dict[int, int] = {}
    with caplog.at_level(logging.WARNING):
        for i in range(ITERATIONS):
            xml = random_payload(rng, stack, 10_000 + i)
            before = await counts(stack)
            result = await stack.sim.post_raw(xml)
            statuses[result.status] = statuses.get(result.status, 0) + 1
            assert result.status == 200 or 400 <= result.status < 500, (result, xml[:2000])
            if result.status != 200:
                assert await counts(stack) == before, xml[:2000]
            if i % 50 == 0:
                stack.clock.advance(seconds=1)
        await stack.drain()
    # both kinds happen, and no handler fell over on the way (an apology is a bug, too)
    assert statuses.get(200, 0) > ITERATIONS // 5 and statuses.get(400, 0) > ITERATIONS // 5, statuses
    # (strangers' userids, "-1" among them, are answered and WeCom refuses those: the outbox says so)
    assert not [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name != "bot.wecom.outbox"
    ]
    assert not [t for u in stack.sim.members for t in texts(stack, u) if "内部错误" in t]


# ------------------------------------------------------------------ dates beyond the calendar

BEYOND_THE_CALENDAR = [
    ("/duty swap 9999-12-31 zhangkz", "一年以内"),
    ("/export 9999-12", "超出范围"),
    ("/export 0001-01", "超出范围"),
    ("/export 0001-01-01 0001-01-02", "超出范围"),
    ("/posted 示范发布 0001-01-01 00:00", "太早"),
]


async def test_dates_beyond_the_calendar_get_a_chinese_answer(sqlite_url: str, clock: FrozenClock) -> None:
    """Year 9999 plus a day, or year 1 in UTC+8, overflow Python's calendar; the answer says so."""
    settings = stack_settings(sqlite_url, {"freshness": FRESHNESS})
    async with running_stack(settings, clock) as stack:
        for sent, (command, expected) in enumerate(BEYOND_THE_CALENDAR, start=1):
            await say(stack, STAFF, command)
            answer = last_text(stack, STAFF)
            assert expected in answer and "内部错误" not in answer, (command, answer)
            assert len(texts(stack, STAFF)) == sent, command
