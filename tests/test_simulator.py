"""The simulator behaves like WeCom (errcodes, limits, single-use codes) and the client and
outbox cope: token refresh, retries of transient errors, pacing instead of silent drops."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from bot.cli.stack import Stack, random_aes_key
from bot.core.clock import FrozenClock, SystemClock
from bot.keys import WECOM
from bot.simulator import WeComSimulator
from bot.simulator.wire import WireFaults, serve
from bot.wecom.client import WeComAPIError, WeComClient, WeComTransportError
from bot.wecom.outbox import Outbox
from storage.models import OutboxMessage
from tests.flow import say, tap, texts
from tests.test_review_flow import SUBMISSION


async def queue_texts(stack: Stack, user: str, messages: list[str]) -> None:
    async with stack.db() as session, session.begin():
        outbox = Outbox(session, stack.clock)
        for text in messages:
            outbox.send_text([user], text)


async def rows(stack: Stack) -> list[OutboxMessage]:
    async with stack.db() as session:
        return list((await session.exec(select(OutboxMessage))).all())


async def api(stack: Stack, path: str, **kwargs: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(kwargs.pop("method", "POST"), stack.settings.wecom.api_base + path, **kwargs) as resp,
    ):
        return dict(await resp.json())


async def test_gettoken_errors(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    wrong_corp = await api(
        stack, "/cgi-bin/gettoken", method="GET", params={"corpid": "x", "corpsecret": "y"}
    )
    assert wrong_corp["errcode"] == 40013
    wrong_secret = await api(
        stack,
        "/cgi-bin/gettoken",
        method="GET",
        params={"corpid": stack.settings.wecom.corp_id, "corpsecret": "y"},
    )
    assert wrong_secret["errcode"] == 40001
    assert (await api(stack, "/cgi-bin/message/send", json={}))["errcode"] == 41001
    assert (await api(stack, "/cgi-bin/message/send", params={"access_token": "nope"}, json={}))[
        "errcode"
    ] == 40014


async def test_expired_token_is_refetched_once(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    await queue_texts(stack, "wangxm", ["第一条"])
    await stack.drain()
    stack.sim.expire_tokens()
    await queue_texts(stack, "wangxm", ["第二条"])
    await stack.drain()
    assert texts(stack, "wangxm") == ["第一条", "第二条"]
    assert stack.sim.call_count("/gettoken") == 2


async def test_token_refreshed_before_it_expires(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    await queue_texts(stack, "wangxm", ["a"])
    await stack.drain()
    stack.clock.advance(seconds=7200 - 200)  # type: ignore[attr-defined]
    await queue_texts(stack, "wangxm", ["b"])
    await stack.drain()
    assert stack.sim.call_count("/gettoken") == 2, "refreshed within five minutes of expiry"


async def test_transient_error_is_retried_and_delivered_once(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    stack.sim.fail_next("/message/send", -1, times=2)
    await queue_texts(stack, "wangxm", ["重要通知"])
    await stack.drain()
    assert texts(stack, "wangxm") == []
    for _ in range(4):
        stack.clock.advance(minutes=5)  # type: ignore[attr-defined]
        await stack.drain()
    assert texts(stack, "wangxm") == ["重要通知"]
    (row,) = await rows(stack)
    assert (row.status, row.attempts) == ("sent", 3)


async def test_permanent_error_fails_without_retry_loop(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    stack.sim.fail_next("/message/send", 40056, times=10)
    await queue_texts(stack, "wangxm", ["x"])
    await stack.drain()
    stack.clock.advance(hours=1)  # type: ignore[attr-defined]
    await stack.drain()
    (row,) = await rows(stack)
    assert row.status == "failed" and "40056" in row.last_error
    assert stack.sim.call_count("/message/send") == 1


async def test_burst_is_paced_not_dropped(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    await queue_texts(stack, "chenfb", [f"日报第{n}条" for n in range(60)])
    for _ in range(4):
        await stack.drain()
        stack.clock.advance(minutes=1)  # type: ignore[attr-defined]
    assert texts(stack, "chenfb") == [f"日报第{n}条" for n in range(60)]
    assert stack.sim.dropped == []


async def test_simulator_drops_past_30_a_minute_like_wecom(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    client = stack.app[WECOM]
    for n in range(31):
        await client.send_message({"touser": "wangxm", "msgtype": "text", "text": {"content": f"{n}"}})
    assert len(texts(stack, "wangxm")) == 30 and len(stack.sim.dropped) == 1


async def test_card_rules_task_id_and_response_codes(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    client = stack.app[WECOM]
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "t"},
        "task_id": "t-1",
        "button_list": [{"text": "同意", "key": "k"}],
    }
    sent = await client.send_message({"touser": "wangxm", "msgtype": "template_card", "template_card": card})
    with pytest.raises(WeComAPIError) as reused:
        await client.send_message({"touser": "wangxm", "msgtype": "template_card", "template_card": card})
    assert reused.value.errcode == 42014
    update = {"response_code": sent["response_code"], "atall": 1, "button": {"replace_name": "已处理"}}
    await client.update_template_card(update)
    with pytest.raises(WeComAPIError):
        await client.update_template_card(update)  # single use
    assert not stack.sim.card("t-1").is_active_for("wangxm")
    late = await client.send_message(
        {"touser": "wangxm", "msgtype": "template_card", "template_card": {**card, "task_id": "t-2"}}
    )
    stack.clock.advance(hours=73)  # type: ignore[attr-defined]
    with pytest.raises(WeComAPIError):
        await client.update_template_card({**update, "response_code": late["response_code"]})


async def test_invalid_users_and_empty_text(sqlite_stack: Stack) -> None:
    client = sqlite_stack.app[WECOM]
    with pytest.raises(WeComAPIError) as nobody:
        await client.send_message({"touser": "ghost", "msgtype": "text", "text": {"content": "x"}})
    assert nobody.value.errcode == 81013
    partly = await client.send_message(
        {"touser": "ghost|wangxm", "msgtype": "text", "text": {"content": "x"}}
    )
    assert partly["invaliduser"] == "ghost"
    with pytest.raises(WeComAPIError) as empty:
        await client.send_message({"touser": "wangxm", "msgtype": "text", "text": {"content": " "}})
    assert empty.value.errcode == 44004


async def test_webhook_unknown_key_and_rate_limit(sqlite_stack: Stack) -> None:
    client = sqlite_stack.app[WECOM]
    with pytest.raises(WeComAPIError) as unknown:
        await client.send_webhook("nokey", {"msgtype": "text", "text": {"content": "x"}})
    assert unknown.value.errcode == 93000
    sqlite_stack.sim.add_robot("k")
    for n in range(20):
        await client.send_webhook("k", {"msgtype": "text", "text": {"content": str(n)}})
    with pytest.raises(WeComAPIError) as limited:
        await client.send_webhook("k", {"msgtype": "text", "text": {"content": "21"}})
    assert limited.value.errcode == 45009 and limited.value.transient


async def test_clicks_on_a_greyed_card_are_impossible_in_the_client(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    await say(stack, "wangxm", SUBMISSION)
    delivered = await tap(stack, "wangxm", "同意")
    task = delivered.payload["template_card"]["task_id"]
    from bot.simulator import SimulatorError

    with pytest.raises(SimulatorError):
        await stack.sim.click("wangxm", task, delivered.payload["template_card"]["button_list"][0]["key"])


async def test_simulator_resends_a_callback_that_gets_no_answer_in_time(clock: FrozenClock) -> None:
    """WeCom waits 5 s for the answer, then sends the same callback again (docs/wecom.md §1.7): a bot that
    answers too late is a failed attempt, not an exception in the caller."""
    attempts = 0

    async def too_slow(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(1)
        return web.Response()

    bot = web.Application()
    bot.router.add_post("/wecom/callback", too_slow)
    runner, url = await serve(bot)
    sim = WeComSimulator(
        corp_id="wwtest",
        corp_secret="s",
        agent_id=1,
        token="tok",
        encoding_aes_key=random_aes_key(),
        clock=clock,
    )
    sim.add_member("wangxm")
    sim.callback_url = url + "/wecom/callback"
    sim._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.1))  # 5 s, shortened
    try:
        result = await sim.send_text("wangxm", "你好")
    finally:
        await sim.close()
        await runner.cleanup()
    assert (result.status, result.attempts) == (599, 4)
    assert attempts == 4


async def test_simulator_wire_answers_after_the_client_gave_up_but_did_the_work(
    clock: FrozenClock,
) -> None:
    """WireFaults: latency before the work, and a late answer after it (bench/chaos.py)."""
    sim = WeComSimulator(
        corp_id="wwtest",
        corp_secret="s",
        agent_id=1,
        token="tok",
        encoding_aes_key=random_aes_key(),
        clock=clock,
    )
    sim.add_member("wangxm")
    faults = WireFaults(
        rng=random.Random(1), latency={"/message/send": 0.05}, late_fraction=1.0, late_seconds=0.6
    )
    faults.install(sim.app)
    runner, url = await serve(sim.app)
    try:
        async with aiohttp.ClientSession() as http:
            client = WeComClient(
                http, base_url=url, corp_id="wwtest", secret="s", agent_id=1, clock=clock, timeout=0.3
            )
            with pytest.raises(WeComTransportError):
                await client.send_message(
                    {"touser": "wangxm", "msgtype": "text", "text": {"content": "迟到的回答"}}
                )
    finally:
        await runner.cleanup()
    assert sim.deliveries("wangxm") == {"迟到的回答": 1}
    assert faults.late_answers == 1


async def test_simulator_slow_answer_on_the_system_clock() -> None:
    """slow_next without `advance` only delays the answer: a simulator on the real clock (which
    cannot be moved) still does the work and answers."""
    clock = SystemClock()
    sim = WeComSimulator(
        corp_id="wwtest",
        corp_secret="s",
        agent_id=1,
        token="tok",
        encoding_aes_key=random_aes_key(),
        clock=clock,
    )
    sim.add_member("wangxm")
    sim.slow_next("/message/send", 0.01)
    runner, url = await serve(sim.app)
    try:
        async with aiohttp.ClientSession() as http:
            client = WeComClient(http, base_url=url, corp_id="wwtest", secret="s", agent_id=1, clock=clock)
            await client.send_message({"touser": "wangxm", "msgtype": "text", "text": {"content": "慢一点"}})
    finally:
        await runner.cleanup()
    assert sim.deliveries("wangxm") == {"慢一点": 1}
    with pytest.raises(ValueError, match="FrozenClock"):
        sim.slow_next("/message/send", 0.01, advance=timedelta(seconds=1))
