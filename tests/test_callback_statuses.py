"""The callback's exact answers, as WeCom sees them over HTTP: each refusal has its own 4xx and
applies nothing, only a verified and readable callback gets an empty 200 and takes effect.

WeCom re-sends anything that is not a 200 (docs/wecom.md §1.7), so a refusal that turned into a 500, or a
200 that hid a refusal, would each be a visible change of behaviour: the statuses are pinned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
import pytest

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.simulator import CallbackCrypto
from tests.flow import texts
from tests.test_callback_security import nothing_changed, text_xml

# The largest callback body taken, written out: the test must not move along with a change.
LIMIT = 256 * 1024
HELP_FIRST_LINE = "审校助手可用命令（发送“/help 命令”查看用法）："


@dataclass(frozen=True)
class Answer:
    status: int
    text: str
    content_type: str


def now_ts(stack: Stack) -> int:
    return int(stack.clock.now().timestamp())


def verify_query(
    stack: Stack, echostr: str, *, ts: str | None = None, nonce: str = "5", signature: str | None = None
) -> dict[str, str]:
    ts = ts if ts is not None else str(now_ts(stack))
    sig = signature if signature is not None else stack.sim.crypto.sign(ts, nonce, echostr)
    return {"msg_signature": sig, "timestamp": ts, "nonce": nonce, "echostr": echostr}


def push_query(stack: Stack, encrypted: str, *, ts: str | None = None, nonce: str = "7") -> dict[str, str]:
    ts = ts if ts is not None else str(now_ts(stack))
    sig = stack.sim.crypto.sign(ts, nonce, encrypted)
    return {"msg_signature": sig, "timestamp": ts, "nonce": nonce}


def envelope(stack: Stack, encrypted: str, *, size: int | None = None) -> bytes:
    """The POST body WeCom sends; padded with trailing spaces to exactly `size` bytes if given."""
    body = (
        f"<xml><ToUserName><![CDATA[{stack.settings.wecom.corp_id}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
        f"<AgentID><![CDATA[{stack.settings.wecom.agent_id}]]></AgentID></xml>"
    ).encode()
    if size is not None:
        assert len(body) <= size
        body += b" " * (size - len(body))
    return body


async def get(stack: Stack, params: Mapping[str, str], path: str | None = None) -> Answer:
    url = stack.bot_url + (path or stack.settings.server.callback_path)
    async with aiohttp.ClientSession() as http, http.get(url, params=params) as resp:
        return Answer(resp.status, await resp.text(), resp.content_type)


async def post(
    stack: Stack, params: Mapping[str, str], body: bytes | AsyncIterator[bytes], path: str | None = None
) -> Answer:
    url = stack.bot_url + (path or stack.settings.server.callback_path)
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, params=params, data=body, headers={"Content-Type": "text/xml"}) as resp,
    ):
        return Answer(resp.status, await resp.text(), resp.content_type)


async def push_help(
    stack: Stack, *, msg_id: int, ts: str | None = None, size: int | None = None, user: str = "wangxm"
) -> Answer:
    """A correctly encrypted and signed "/help" from `user`."""
    encrypted = stack.sim.crypto.encrypt(text_xml(stack, user, "/help", msg_id=msg_id))
    body = envelope(stack, encrypted, size=size)
    return await post(stack, push_query(stack, encrypted, ts=ts), body)


async def helped_once(stack: Stack, user: str = "wangxm") -> None:
    """The /help answer reached `user`, exactly once."""
    await stack.drain()
    received = texts(stack, user)
    assert len(received) == 1 and received[0].startswith(HELP_FIRST_LINE), received


# ------------------------------------------------------------------ GET: URL verification


async def test_verification_echoes_the_plaintext_as_text_plain(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    encrypted = stack.sim.crypto.encrypt("1288432023552776189")
    answer = await get(stack, verify_query(stack, encrypted))
    assert answer == Answer(200, "1288432023552776189", "text/plain")


async def test_verification_without_each_parameter_is_400(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    query = verify_query(stack, stack.sim.crypto.encrypt("42"))
    for missing in query:
        answer = await get(stack, {k: v for k, v in query.items() if k != missing})
        assert (answer.status, answer.text) == (400, "missing parameters"), missing
        answer = await get(stack, {**query, missing: ""})
        assert (answer.status, answer.text) == (400, "missing parameters"), missing


async def test_verification_with_a_bad_signature_is_403(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    encrypted = stack.sim.crypto.encrypt("42")
    good = verify_query(stack, encrypted)
    forged = ("0" if good["msg_signature"][0] != "0" else "1") + good["msg_signature"][1:]
    answer = await get(stack, {**good, "msg_signature": forged})
    assert (answer.status, answer.text) == (403, "bad signature")
    answer = await get(stack, {**good, "nonce": "6"})  # signed over another nonce
    assert (answer.status, answer.text) == (403, "bad signature")


async def test_verification_echostr_for_another_corp_is_403(sqlite_stack: Stack) -> None:
    """Signed with our token, but encrypted for another ReceiveId (docs/wecom.md §1.5: reject)."""
    stack = sqlite_stack
    wecom = stack.settings.wecom
    other = CallbackCrypto(wecom.token, wecom.encoding_aes_key, "wwanothercorp0001")
    answer = await get(stack, verify_query(stack, other.encrypt("42")))
    assert (answer.status, answer.text) == (403, "bad receive id")


# not base64; 3 bytes; 15 bytes (no whole AES block)
UNDECRYPTABLE = ["abc", "YWJj", "A" * 20]


@pytest.mark.parametrize("echostr", UNDECRYPTABLE)
async def test_verification_with_a_malformed_echostr_is_400(sqlite_stack: Stack, echostr: str) -> None:
    answer = await get(sqlite_stack, verify_query(sqlite_stack, echostr))
    assert (answer.status, answer.text) == (400, "bad echostr")


# ------------------------------------------------------------------ the timestamp (both methods)


async def test_timestamp_at_the_tolerance_is_taken_one_second_more_is_403(
    sqlite_stack: Stack,
) -> None:
    """The window is ±tolerance, inclusive, in both directions (a fast clock at WeCom, too)."""
    stack = sqlite_stack
    tolerance = stack.settings.wecom.timestamp_tolerance_seconds
    assert tolerance == 300
    encrypted = stack.sim.crypto.encrypt("42")
    cases = [
        (-tolerance, (200, "42")),
        (tolerance, (200, "42")),
        (-tolerance - 1, (403, "stale timestamp")),
        (tolerance + 1, (403, "stale timestamp")),
    ]
    for offset, expected in cases:
        answer = await get(stack, verify_query(stack, encrypted, ts=str(now_ts(stack) + offset)))
        assert (answer.status, answer.text) == expected, offset
    for number, offset in enumerate([-tolerance, tolerance], start=1):
        answer = await push_help(stack, msg_id=number, ts=str(now_ts(stack) + offset))
        assert (answer.status, answer.text) == (200, ""), offset
    await stack.drain()
    assert len(texts(stack, "wangxm")) == 2
    for number, offset in enumerate([-tolerance - 1, tolerance + 1], start=3):
        answer = await push_help(stack, msg_id=number, ts=str(now_ts(stack) + offset))
        assert (answer.status, answer.text) == (403, "stale timestamp"), offset
    await stack.drain()
    assert len(texts(stack, "wangxm")) == 2


async def test_timestamp_of_twelve_digits_is_a_number_thirteen_is_not(sqlite_stack: Stack) -> None:
    """Up to 12 digits is read as a number (and then judged by the window); 13 digits, such as a
    millisecond timestamp, is refused as no timestamp at all."""
    stack = sqlite_stack
    encrypted = stack.sim.crypto.encrypt("42")
    padded = str(now_ts(stack)).zfill(12)
    cases = [
        (padded, 200),  # today, written with leading zeros
        ("999999999999", 403),  # a number, far in the future
        (padded.zfill(13), 400),
        (str(now_ts(stack) * 1000), 400),  # milliseconds
    ]
    for ts, status in cases:
        answer = await get(stack, verify_query(stack, encrypted, ts=ts))
        assert answer.status == status, ts
    for number, (ts, status) in enumerate(cases, start=1):
        answer = await push_help(stack, msg_id=number, ts=ts)
        assert answer.status == status, ts
    await helped_once(stack)


@pytest.mark.parametrize("ts", ["abc", "-5", "+1795395600", "１７９５３９５６００", "1.5", " 1795395600"])
async def test_a_timestamp_that_is_no_plain_number_is_400(sqlite_stack: Stack, ts: str) -> None:
    stack = sqlite_stack
    encrypted = stack.sim.crypto.encrypt("42")
    answer = await get(stack, verify_query(stack, encrypted, ts=ts))
    assert (answer.status, answer.text) == (400, "bad timestamp")
    answer = await push_help(stack, msg_id=1, ts=ts)
    assert (answer.status, answer.text) == (400, "bad timestamp")
    await nothing_changed(stack)


# ------------------------------------------------------------------ POST: data push


async def test_a_good_callback_is_an_empty_200_and_is_applied_once(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    answer = await push_help(stack, msg_id=11)
    assert (answer.status, answer.text) == (200, "")
    await helped_once(stack)


async def test_push_without_each_parameter_is_400(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    encrypted = stack.sim.crypto.encrypt(text_xml(stack, "wangxm", "/help"))
    query = push_query(stack, encrypted)
    for missing in query:
        partial = {k: v for k, v in query.items() if k != missing}
        answer = await post(stack, partial, envelope(stack, encrypted))
        assert (answer.status, answer.text) == (400, "missing parameters"), missing
    await nothing_changed(stack)


async def test_a_body_over_the_limit_is_413_one_at_the_limit_is_read(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    answer = await push_help(stack, msg_id=21, size=LIMIT + 1)
    assert (answer.status, answer.text) == (413, "too large")
    await nothing_changed(stack)
    answer = await push_help(stack, msg_id=22, size=LIMIT)
    assert (answer.status, answer.text) == (200, "")
    await helped_once(stack)


async def test_a_chunked_body_over_the_limit_is_413(sqlite_stack: Stack) -> None:
    """Without a Content-Length the size is known only once read: the limit holds all the same."""
    stack = sqlite_stack
    encrypted = stack.sim.crypto.encrypt(text_xml(stack, "wangxm", "/help", msg_id=31))
    body = envelope(stack, encrypted, size=LIMIT + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 4096):
            yield body[start : start + 4096]

    answer = await post(stack, push_query(stack, encrypted), chunks())
    assert (answer.status, answer.text) == (413, "too large")
    await nothing_changed(stack)


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><Encrypt>",  # not XML
        b"<xml><Nothing/></xml>",  # no Encrypt
        b"<other><Encrypt>x</Encrypt></other>",  # no <xml> root
        b"\xff\xfe<xml/>",  # not UTF-8
    ],
    ids=["not-xml", "no-encrypt", "no-xml-root", "not-utf8"],
)  # bench.mutate runs unescaped ids
async def test_a_malformed_envelope_is_400(sqlite_stack: Stack, body: bytes) -> None:
    stack = sqlite_stack
    answer = await post(stack, push_query(stack, "x"), body)
    assert (answer.status, answer.text) == (400, "malformed body")
    await nothing_changed(stack)


async def test_a_push_with_a_bad_signature_is_403(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    encrypted = stack.sim.crypto.encrypt(text_xml(stack, "wangxm", "/help"))
    query = push_query(stack, encrypted)
    answer = await post(stack, {**query, "nonce": "8"}, envelope(stack, encrypted))
    assert (answer.status, answer.text) == (403, "bad signature")
    other = stack.sim.crypto.encrypt(text_xml(stack, "wangxm", "/mine"))
    answer = await post(stack, query, envelope(stack, other))  # signed for another body
    assert (answer.status, answer.text) == (403, "bad signature")
    await nothing_changed(stack)


@pytest.mark.parametrize("encrypted", UNDECRYPTABLE)
async def test_an_undecryptable_push_is_400(sqlite_stack: Stack, encrypted: str) -> None:
    stack = sqlite_stack
    answer = await post(stack, push_query(stack, encrypted), envelope(stack, encrypted))
    assert (answer.status, answer.text) == (400, "undecryptable")
    await nothing_changed(stack)


async def test_a_push_encrypted_for_another_corp_is_403(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    wecom = stack.settings.wecom
    other = CallbackCrypto(wecom.token, wecom.encoding_aes_key, "wwanothercorp0001")
    encrypted = other.encrypt(text_xml(stack, "wangxm", "/help"))
    answer = await post(stack, push_query(stack, encrypted), envelope(stack, encrypted))
    assert (answer.status, answer.text) == (403, "refused")
    await nothing_changed(stack)


@pytest.mark.parametrize(
    "plain", ["<xml><not closed>", "not xml at all", "<xml><MsgType>text</MsgType></xml>"]
)
async def test_an_unreadable_event_is_400(sqlite_stack: Stack, plain: str) -> None:
    stack = sqlite_stack
    encrypted = stack.sim.crypto.encrypt(plain)
    answer = await post(stack, push_query(stack, encrypted), envelope(stack, encrypted))
    assert (answer.status, answer.text) == (400, "unreadable event")
    await nothing_changed(stack)


# ------------------------------------------------------------------ the routes


@pytest.fixture
async def moved_stack(sqlite_url: str, clock: FrozenClock) -> AsyncIterator[Stack]:
    settings = stack_settings(sqlite_url, {"server": {"callback_path": "/hooks/wecom-7"}})
    async with running_stack(settings, clock) as running:
        yield running


async def test_both_methods_answer_on_the_configured_path_only(moved_stack: Stack) -> None:
    stack = moved_stack
    assert stack.settings.server.callback_path == "/hooks/wecom-7"
    encrypted = stack.sim.crypto.encrypt("42")
    assert await get(stack, verify_query(stack, encrypted)) == Answer(200, "42", "text/plain")
    assert (await get(stack, verify_query(stack, encrypted), path="/wecom/callback")).status == 404
    assert (await push_help(stack, msg_id=41)).status == 200
    moved = await post(stack, {}, b"", path="/wecom/callback")
    assert moved.status == 404
    await helped_once(stack)
