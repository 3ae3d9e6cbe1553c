"""Bad input at the callback: forged, stale, malformed or foreign callbacks change nothing."""

from __future__ import annotations

import aiohttp
from sqlmodel import select

from bot.cli.stack import Stack
from bot.simulator import CallbackCrypto
from storage.models import Draft, OutboxMessage
from tests.flow import drafts, last_text, say
from tests.test_review_flow import SUBMISSION


def text_xml(stack: Stack, user: str, content: str, msg_id: int = 9001) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{stack.settings.wecom.corp_id}]]></ToUserName>"
        f"<FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{int(stack.clock.now().timestamp())}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId><AgentID>{stack.settings.wecom.agent_id}</AgentID></xml>"
    )


async def nothing_changed(stack: Stack) -> None:
    async with stack.db() as session:
        assert (await session.exec(select(Draft))).all() == []
        assert (await session.exec(select(OutboxMessage))).all() == []
    assert all(not stack.sim.inbox(u) for u in stack.sim.members)


async def test_forged_signature_is_refused(stack: Stack) -> None:
    result = await stack.sim.post_raw(text_xml(stack, "wangxm", SUBMISSION), tamper_signature=True)
    assert result.status == 403
    await stack.drain()
    await nothing_changed(stack)


async def test_stale_timestamp_is_refused(stack: Stack) -> None:
    stale = int(stack.clock.now().timestamp()) - 301
    result = await stack.sim.post_raw(text_xml(stack, "wangxm", SUBMISSION), timestamp=stale)
    assert result.status == 403
    await nothing_changed(stack)


async def test_callback_encrypted_for_another_corp_is_refused(stack: Stack) -> None:
    other = CallbackCrypto(
        stack.settings.wecom.token, stack.settings.wecom.encoding_aes_key, "wwanothercorp0001"
    )
    encrypted = other.encrypt(text_xml(stack, "wangxm", SUBMISSION))
    ts, nonce = str(int(stack.clock.now().timestamp())), "777"
    query = {"msg_signature": other.sign(ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    async with (
        aiohttp.ClientSession() as http,
        http.post(stack.sim.callback_url or "", params=query, data=body) as resp,
    ):
        assert resp.status in (400, 403)
    await nothing_changed(stack)


async def test_malformed_bodies_and_missing_parameters(stack: Stack) -> None:
    crypto = stack.sim.crypto
    ts, nonce = str(int(stack.clock.now().timestamp())), "1"
    url = stack.sim.callback_url or ""
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data="hello") as resp:
            assert resp.status == 400  # no signature parameters
        garbage = "<xml><Encrypt>"
        query = {"msg_signature": crypto.sign(ts, nonce, "x"), "timestamp": ts, "nonce": nonce}
        async with http.post(url, params=query, data=garbage) as resp:
            assert resp.status == 400
        encrypted = crypto.encrypt("<xml><not closed>")
        query = {"msg_signature": crypto.sign(ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
        async with http.post(
            url, params=query, data=f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        ) as resp:
            assert resp.status == 400
        async with http.get(
            url, params={"msg_signature": "x", "timestamp": ts, "nonce": nonce, "echostr": "abc"}
        ) as resp:
            assert resp.status == 403
    await nothing_changed(stack)


async def test_xml_with_a_document_type_is_refused_signed_or_not(stack: Stack) -> None:
    """WeCom never sends a DTD; one in the envelope (read before the signature is checked) or
    in a correctly signed message (a billion-laughs entity, say) is refused, 400, nothing done."""
    crypto = stack.sim.crypto
    ts, nonce = str(int(stack.clock.now().timestamp())), "2"
    bomb = '<!DOCTYPE xml [<!ENTITY a "哈哈哈哈哈哈哈哈"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    message = bomb + text_xml(stack, "wangxm", "&b;")
    encrypted = crypto.encrypt(message)
    url = stack.sim.callback_url or ""
    async with aiohttp.ClientSession() as http:
        query = {"msg_signature": crypto.sign(ts, nonce, encrypted), "timestamp": ts, "nonce": nonce}
        async with http.post(
            url, params=query, data=f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        ) as resp:
            assert resp.status == 400
        wrapped = f'<!DOCTYPE xml [<!ENTITY e "{encrypted}">]><xml><Encrypt>&e;</Encrypt></xml>'
        async with http.post(url, params=query, data=wrapped) as resp:
            assert resp.status == 400
        plain = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"  # the control: accepted
        clean = crypto.encrypt(text_xml(stack, "wangxm", "/help"))
        query = {"msg_signature": crypto.sign(ts, nonce, clean), "timestamp": ts, "nonce": nonce}
        async with http.post(url, params=query, data=plain.replace(encrypted, clean)) as resp:
            assert resp.status == 200
    await stack.drain()
    async with stack.db() as session:
        assert (await session.exec(select(Draft))).all() == []
    assert "审校助手可用命令" in last_text(stack, "wangxm")  # only the clean /help was answered


async def test_url_verification_answers_the_plain_echo(stack: Stack) -> None:
    result = await stack.sim.verify_url()
    assert result.status == 200 and result.body.isdigit()


async def test_non_staff_get_a_polite_refusal(stack: Stack) -> None:
    stack.sim.add_member("visitor", "访客")
    await say(stack, "visitor", SUBMISSION)
    assert "不在本单位审校助手的人员名单中" in last_text(stack, "visitor")
    assert await drafts(stack) == []


async def test_unknown_command_and_plain_text(stack: Stack) -> None:
    await say(stack, "wangxm", "/fly 1")
    assert "没有 /fly 这个命令" in last_text(stack, "wangxm") and "/help" in last_text(stack, "wangxm")
    await say(stack, "wangxm", "你好")
    assert "/help" in last_text(stack, "wangxm")
    assert await drafts(stack) == []


async def test_enter_agent_is_greeted_once_a_day(stack: Stack) -> None:
    """Opening the app gets the day's welcome (tests/test_menu.py); opening it again, nothing."""
    for _ in range(2):
        result = await stack.sim.enter_agent("wangxm")
        assert result.status == 200
        await stack.drain()
        stack.clock.advance(minutes=1)
    assert [d.msgtype for d in stack.sim.inbox("wangxm")] == ["text"]
    assert await drafts(stack) == []
