"""The simulated WeCom server: qyapi endpoints with WeCom's validation, errcodes and limits,
members' inboxes, card state, and callbacks encrypted and signed exactly as WeCom sends them.

Facts followed are in ../shared/wecom-facts.md (section numbers cited below). Where WeCom's
documentation names no errcode for a case, the code used is marked "unverified" here.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import secrets
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from bot.core.clock import Clock
from bot.simulator.crypto import CallbackCrypto

log = logging.getLogger(__name__)

API = "/cgi-bin"
TEXT_LIMIT = 2048  # text: cut beyond (§4.3)
MARKDOWN_LIMIT = 2048  # markdown via message/send (§4.3)
WEBHOOK_TEXT_LIMIT = 2048
WEBHOOK_MARKDOWN_LIMIT = 4096  # §4.7
MAX_BUTTONS = 6
MAX_HORIZONTAL = 6
TASK_ID_RE = re.compile(r"^[A-Za-z0-9_\-@]{1,128}$")
RESPONSE_CODE_TTL = timedelta(hours=72)  # §4.5
MEDIA_TTL = timedelta(days=3)
MAX_FILE_BYTES = 20 * 1024 * 1024
WEBHOOK_PER_MINUTE = 20  # §4.7
MEMBER_PER_HOUR = 1000  # §5.1
CALLBACK_RETRIES = 3  # §1.7: WeCom re-sends when it gets no HTTP 200
SEND_TYPES = frozenset({"text", "markdown", "template_card", "file", "textcard", "image", "news"})
INTERACTIVE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})

ERRMSG = {
    0: "ok",
    -1: "system busy",
    40001: "invalid credential",
    40006: "invalid file size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    40058: "invalid parameter",
    41001: "access_token missing",
    42001: "access_token expired",
    42014: "taskid has existed or empty or exceed max len",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "reach max api daily quota limit",
    45033: "api concurrent out of limit",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
}
# Unverified: the docs name no errcode for a used or expired response_code; 40058 "invalid
# parameter" is WeCom's generic answer for a bad field value.
RESPONSE_CODE_INVALID = 40058


class SimulatorError(Exception):
    """A simulated person tried something their phone would not let them do."""


@dataclass(frozen=True)
class Delivered:
    """One message as it reached one member's phone."""

    userid: str
    msgtype: str
    payload: dict[str, Any]
    msgid: str
    at: datetime


@dataclass
class CardState:
    """A sent template card: who holds it and how each holder's copy looks now."""

    task_id: str
    card: dict[str, Any]
    recipients: list[str]
    sent_at: datetime
    greyed: dict[str, str] = field(default_factory=dict)  # userid → replace_name
    replacements: dict[str, dict[str, Any]] = field(default_factory=dict)  # userid → new card

    def shown_to(self, userid: str) -> dict[str, Any]:
        """The card as `userid` sees it now: as sent, or as update_template_card replaced it."""
        return self.replacements.get(userid, self.card)

    def is_active_for(self, userid: str) -> bool:
        """Whether `userid` holds this card and can still tap its buttons."""
        if userid not in self.recipients or userid in self.greyed:
            return False
        replaced = self.replacements.get(userid)
        return replaced is None or bool(replaced.get("button_list"))

    def button_keys(self, userid: str) -> set[str]:
        card = self.shown_to(userid)
        return {str(b.get("key")) for b in card.get("button_list", []) if b.get("type", 0) == 0}


@dataclass
class ResponseCode:
    task_id: str
    issued_at: datetime
    used: bool = False


@dataclass(frozen=True)
class Media:
    filename: str
    content: bytes
    kind: str
    uploaded_at: datetime


@dataclass(frozen=True)
class CallbackResult:
    """What the bot answered to one callback request (after WeCom's re-sends, if any)."""

    status: int
    body: str
    attempts: int = 1


@dataclass
class _Failure:
    errcode: int
    remaining: int


class WeComSimulator:
    """One corp with one self-built app. Serve `.app`; set `.callback_url` to the bot's URL."""

    def __init__(
        self,
        *,
        corp_id: str,
        corp_secret: str,
        agent_id: int,
        token: str,
        encoding_aes_key: str,
        clock: Clock,
        token_ttl: int = 7200,
        per_member_per_minute: int = 30,
    ) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._secret = corp_secret
        self.clock = clock
        self.token_ttl = token_ttl
        self.per_member_per_minute = per_member_per_minute
        self.crypto = CallbackCrypto(token, encoding_aes_key, corp_id)
        self.callback_url: str | None = None
        self.members: dict[str, str] = {}
        self.media: dict[str, Media] = {}
        self.robots: dict[str, list[dict[str, Any]]] = {}
        self.dropped: list[Delivered] = []  # silently lost to the per-member limit (§5.1)
        self.truncated: list[Delivered] = []  # text cut at 2048 bytes (§4.3)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._inboxes: dict[str, list[Delivered]] = defaultdict(list)
        self._cards: dict[str, CardState] = {}
        self._codes: dict[str, ResponseCode] = {}
        self._tokens: dict[str, datetime] = {}
        self._failures: dict[str, _Failure] = {}
        self._member_sends: dict[str, deque[datetime]] = defaultdict(deque)
        self._robot_sends: dict[str, deque[datetime]] = defaultdict(deque)
        self._msgids = itertools.count(1)
        self._event_msgids = itertools.count(7_000_000_000_000_000_001)
        self._last_callback: tuple[dict[str, str], str] | None = None
        self._http: aiohttp.ClientSession | None = None
        self.app = web.Application(client_max_size=MAX_FILE_BYTES + 1024 * 1024)
        self.app.router.add_get(f"{API}/gettoken", self._gettoken)
        self._route("/message/send", self._message_send)
        self._route("/message/update_template_card", self._update_template_card)
        self._route("/media/upload", self._media_upload)
        self.app.router.add_post(f"{API}/webhook/send", self._webhook_send)

    # ---- set-up and inspection -------------------------------------------------------------

    def add_member(self, userid: str, name: str = "") -> None:
        self.members[userid] = name or userid

    def add_robot(self, key: str) -> None:
        """A group robot (消息推送) whose webhook key is `key`."""
        self.robots.setdefault(key, [])

    def inbox(self, userid: str) -> list[Delivered]:
        return list(self._inboxes.get(userid, []))

    def card(self, task_id: str) -> CardState:
        try:
            return self._cards[task_id]
        except KeyError:
            raise SimulatorError(f"no card with task_id {task_id}") from None

    def expire_tokens(self) -> None:
        """WeCom revoked or expired every access_token (callers then get 42001)."""
        past = self.clock.now() - timedelta(seconds=1)
        self._tokens = {token: past for token in self._tokens}

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """The next `times` calls to `path` (e.g. "/message/send") answer `errcode`."""
        self._failures[path] = _Failure(errcode, times)

    def call_count(self, path: str) -> int:
        return sum(1 for called, _ in self.calls if called == path)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ---- qyapi -----------------------------------------------------------------------------

    def _route(self, path: str, handler: Callable[[web.Request], Awaitable[dict[str, Any]]]) -> None:
        async def endpoint(request: web.Request) -> web.Response:
            denied = self._check_token(request)
            if denied is not None:
                return _answer(denied)
            failure = self._failures.get(path)
            if failure is not None and failure.remaining > 0:
                failure.remaining -= 1
                self.calls.append((path, {"injected": failure.errcode}))
                return _answer(failure.errcode)
            return web.json_response(await handler(request))

        self.app.router.add_post(f"{API}{path}", endpoint)

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.calls.append(("/gettoken", {}))
        if request.query.get("corpid") != self.corp_id:
            return _answer(40013)
        if not secrets.compare_digest(request.query.get("corpsecret", ""), self._secret):
            return _answer(40001)
        failure = self._failures.get("/gettoken")
        if failure is not None and failure.remaining > 0:
            failure.remaining -= 1
            return _answer(failure.errcode)
        token = secrets.token_urlsafe(48)
        self._tokens[token] = self.clock.now() + timedelta(seconds=self.token_ttl)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.token_ttl}
        )

    def _check_token(self, request: web.Request) -> int | None:
        token = request.query.get("access_token")
        if not token:
            return 41001
        expires = self._tokens.get(token)
        if expires is None:
            return 40014
        if expires <= self.clock.now():
            return 42001
        return None

    async def _message_send(self, request: web.Request) -> dict[str, Any]:
        body = await _json(request)
        self.calls.append(("/message/send", body))
        if body is None:
            return _error(40058)
        if body.get("agentid") != self.agent_id:
            return _error(40056)
        msgtype = body.get("msgtype")
        if msgtype not in SEND_TYPES or not isinstance(body.get(msgtype), dict):
            return _error(40008)
        problem = self._validate_content(msgtype, body)
        if problem:
            return _error(problem)
        targets = [u for u in str(body.get("touser", "")).split("|") if u]
        if targets == ["@all"]:
            targets = list(self.members)
        valid = [u for u in dict.fromkeys(targets) if u in self.members]
        invalid = [u.lower() for u in dict.fromkeys(targets) if u not in self.members]
        if not valid:
            return {**_error(81013), "invaliduser": "|".join(invalid)}
        answer: dict[str, Any] = {
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": "|".join(invalid),
            "msgid": f"sim-msg-{next(self._msgids)}",
        }
        if msgtype == "template_card":
            card = body["template_card"]
            task_id = card.get("task_id")
            if card.get("card_type") in INTERACTIVE or task_id:
                if not isinstance(task_id, str) or not TASK_ID_RE.match(task_id) or task_id in self._cards:
                    return _error(42014)
                self._cards[task_id] = CardState(task_id, card, valid, self.clock.now())
            if card.get("card_type") in INTERACTIVE:
                answer["response_code"] = self._issue_code(task_id)
        if msgtype == "text":
            content = body["text"]["content"]
            if len(content.encode("utf-8")) > TEXT_LIMIT:
                body = {**body, "text": {**body["text"], "content": _cut_bytes(content, TEXT_LIMIT)}}
                self.truncated.append(self._delivery(valid[0], body, answer["msgid"]))
        for userid in valid:
            self._deliver(userid, body, answer["msgid"])
        return answer

    def _validate_content(self, msgtype: str, body: dict[str, Any]) -> int:
        part = body[msgtype]
        if msgtype in ("text", "markdown"):
            content = part.get("content")
            if not isinstance(content, str) or not content.strip():
                return 44004
            if msgtype == "markdown" and len(content.encode("utf-8")) > MARKDOWN_LIMIT:
                return 45002
        if msgtype == "file":
            media = self.media.get(str(part.get("media_id", "")))
            if media is None or self.clock.now() - media.uploaded_at > MEDIA_TTL:
                return 40007
        if msgtype == "template_card":
            return _card_problem(part)
        return 0

    def _deliver(self, userid: str, body: dict[str, Any], msgid: str) -> None:
        """Per app and member: at most 30 a minute and 1000 an hour; the rest vanish (§5.1)."""
        now = self.clock.now()
        sends = self._member_sends[userid]
        while sends and now - sends[0] >= timedelta(hours=1):
            sends.popleft()
        last_minute = sum(1 for t in sends if now - t < timedelta(minutes=1))
        delivered = self._delivery(userid, body, msgid)
        if last_minute >= self.per_member_per_minute or len(sends) >= MEMBER_PER_HOUR:
            self.dropped.append(delivered)
            log.warning("simulator dropped a message to %s (per-member limit)", userid)
            return
        sends.append(now)
        self._inboxes[userid].append(delivered)

    def _delivery(self, userid: str, body: dict[str, Any], msgid: str) -> Delivered:
        return Delivered(userid, str(body["msgtype"]), json.loads(json.dumps(body)), msgid, self.clock.now())

    def _issue_code(self, task_id: str) -> str:
        code = secrets.token_urlsafe(24)
        self._codes[code] = ResponseCode(task_id, self.clock.now())
        return code

    async def _update_template_card(self, request: web.Request) -> dict[str, Any]:
        body = await _json(request)
        self.calls.append(("/message/update_template_card", body or {}))
        if body is None:
            return _error(40058)
        if body.get("agentid") != self.agent_id:
            return _error(40056)
        code = self._codes.get(str(body.get("response_code", "")))
        if code is None or code.used or self.clock.now() - code.issued_at > RESPONSE_CODE_TTL:
            return _error(RESPONSE_CODE_INVALID)
        state = self._cards[code.task_id]
        if body.get("atall") == 1:
            targets = list(state.recipients)
        else:
            targets = [u for u in body.get("userids", []) if u in state.recipients]
        button = body.get("button")
        replacement = body.get("template_card")
        if not targets or (button is None) == (replacement is None):
            return _error(40058)
        if button is not None and not str(button.get("replace_name", "")).strip():
            return _error(40058)
        if replacement is not None and _card_problem(replacement, update=True):
            return _error(40058)
        code.used = True
        for userid in targets:
            if button is not None:
                state.greyed[userid] = str(button["replace_name"])
            else:
                state.replacements[userid] = replacement
                state.greyed.pop(userid, None)
        return {"errcode": 0, "errmsg": "ok", "invaliduser": []}

    async def _media_upload(self, request: web.Request) -> dict[str, Any]:
        kind = request.query.get("type", "")
        self.calls.append(("/media/upload", {"type": kind}))
        if kind not in ("file", "image", "voice", "video"):
            return _error(40058)
        try:
            reader = await request.multipart()
            part = await reader.next()
        except (AssertionError, ValueError, KeyError):
            return _error(40058)
        if part is None or getattr(part, "name", None) != "media":
            return _error(40058)
        content = await part.read()  # type: ignore[union-attr]
        filename = part.filename or "file"  # type: ignore[union-attr]
        if not 5 <= len(content) <= MAX_FILE_BYTES:
            return _error(40006)
        media_id = f"sim-media-{secrets.token_hex(12)}"
        now = self.clock.now()
        self.media[media_id] = Media(filename, bytes(content), kind, now)
        return {
            "errcode": 0,
            "errmsg": "ok",
            "type": kind,
            "media_id": media_id,
            "created_at": str(int(now.timestamp())),
        }

    async def _webhook_send(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        body = await _json(request)
        self.calls.append(("/webhook/send", body or {}))
        if key not in self.robots:
            return _answer(93000)
        failure = self._failures.get("/webhook/send")
        if failure is not None and failure.remaining > 0:
            failure.remaining -= 1
            return _answer(failure.errcode)
        if body is None or body.get("msgtype") not in ("text", "markdown", "template_card", "file", "news"):
            return _answer(40008)
        msgtype = body["msgtype"]
        if msgtype in ("text", "markdown"):
            content = str(body.get(msgtype, {}).get("content", ""))
            limit = WEBHOOK_TEXT_LIMIT if msgtype == "text" else WEBHOOK_MARKDOWN_LIMIT
            if not content.strip():
                return _answer(44004)
            if len(content.encode("utf-8")) > limit:
                return _answer(45002)
        now = self.clock.now()
        sends = self._robot_sends[key]
        while sends and now - sends[0] >= timedelta(minutes=1):
            sends.popleft()
        if len(sends) >= WEBHOOK_PER_MINUTE:
            return _answer(45009)
        sends.append(now)
        self.robots[key].append(body)
        return _answer(0)

    # ---- callbacks: what members do on their phones ----------------------------------------

    async def send_text(self, userid: str, content: str, *, msg_id: int | None = None) -> CallbackResult:
        """`userid` types `content` into the app's chat."""
        self._require_member(userid)
        msg_id = msg_id if msg_id is not None else next(self._event_msgids)
        xml = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{userid}]]></FromUserName>"
            f"<CreateTime>{self._now_ts()}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content>{_cdata(content)}</Content><MsgId>{msg_id}</MsgId>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )
        return await self._push(xml)

    async def click(self, userid: str, task_id: str, key: str) -> CallbackResult:
        """`userid` taps the button `key` on card `task_id`; WeCom issues a fresh response code."""
        state = self.card(task_id)
        if not state.is_active_for(userid):
            raise SimulatorError(f"{userid} cannot tap card {task_id}: not held or greyed out")
        if key not in state.button_keys(userid):
            raise SimulatorError(f"card {task_id} has no button {key}")
        card = state.shown_to(userid)
        xml = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{userid}]]></FromUserName>"
            f"<CreateTime>{self._now_ts()}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[template_card_event]]></Event><EventKey>{_cdata(key)}</EventKey>"
            f"<TaskId>{_cdata(task_id)}</TaskId>"
            f"<CardType>{_cdata(str(card.get('card_type', '')))}</CardType>"
            f"<ResponseCode>{_cdata(self._issue_code(task_id))}</ResponseCode>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )
        return await self._push(xml)

    async def enter_agent(self, userid: str) -> CallbackResult:
        self._require_member(userid)
        xml = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{userid}]]></FromUserName>"
            f"<CreateTime>{self._now_ts()}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )
        return await self._push(xml)

    async def post_raw(
        self, xml: str, *, tamper_signature: bool = False, timestamp: int | None = None
    ) -> CallbackResult:
        """Encrypt and post any plaintext XML once (no re-sends): for forged and odd callbacks."""
        return await self._push(xml, tamper_signature=tamper_signature, timestamp=timestamp, retries=0)

    async def resend_last(self) -> CallbackResult:
        """WeCom re-sends the previous callback byte for byte (same signature and nonce)."""
        if self._last_callback is None:
            raise SimulatorError("nothing has been sent yet")
        query, body = self._last_callback
        return await self._post(query, body)

    async def verify_url(self) -> CallbackResult:
        """What the admin console does when the callback URL is saved (§1.2)."""
        echo = str(secrets.randbelow(10**19))
        encrypted = self.crypto.encrypt(echo)
        timestamp, nonce = str(self._now_ts()), str(secrets.randbelow(10**10))
        query = {
            "msg_signature": self.crypto.sign(timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
            "echostr": encrypted,
        }
        async with self._session().get(self._callback_url(), params=query) as resp:
            text = await resp.text()
        if resp.status == 200 and text != echo:
            raise SimulatorError("URL verification answered 200 but not the decrypted echostr")
        return CallbackResult(resp.status, text)

    async def _push(
        self,
        xml: str,
        *,
        tamper_signature: bool = False,
        timestamp: int | None = None,
        retries: int = CALLBACK_RETRIES,
    ) -> CallbackResult:
        encrypted = self.crypto.encrypt(xml)
        stamp = str(timestamp if timestamp is not None else self._now_ts())
        nonce = str(secrets.randbelow(10**10))
        sig = self.crypto.sign(stamp, nonce, encrypted)
        if tamper_signature:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        query = {"msg_signature": sig, "timestamp": stamp, "nonce": nonce}
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        self._last_callback = (query, body)
        result = await self._post(query, body)
        attempts = 1
        while result.status != 200 and attempts <= retries:  # WeCom re-sends until HTTP 200
            attempts += 1
            result = await self._post(query, body)
        return CallbackResult(result.status, result.body, attempts)

    async def _post(self, query: dict[str, str], body: str) -> CallbackResult:
        try:
            async with self._session().post(
                self._callback_url(), params=query, data=body.encode("utf-8"),
                headers={"Content-Type": "text/xml"},
            ) as resp:
                return CallbackResult(resp.status, await resp.text())
        except aiohttp.ClientError as exc:
            return CallbackResult(599, type(exc).__name__)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))  # §1.7
        return self._http

    def _callback_url(self) -> str:
        if not self.callback_url:
            raise SimulatorError("callback_url is not set")
        return self.callback_url

    def _require_member(self, userid: str) -> None:
        if userid not in self.members:
            raise SimulatorError(f"{userid} is not a member of the simulated corp")

    def _now_ts(self) -> int:
        return int(self.clock.now().timestamp())


def _card_problem(card: dict[str, Any], *, update: bool = False) -> int:
    """errcode for a malformed template_card, 0 when it is acceptable (§4.4)."""
    card_type = card.get("card_type")
    if card_type not in ("text_notice", "news_notice", *INTERACTIVE):
        return 40058
    if not card.get("main_title", {}).get("title") and not card.get("sub_title_text"):
        return 40058
    if len(card.get("horizontal_content_list", [])) > MAX_HORIZONTAL:
        return 40058
    if card_type == "button_interaction":
        buttons = card.get("button_list")
        if not update and (not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS):
            return 40058
        keys = [str(b.get("key", "")) for b in buttons or [] if b.get("type", 0) == 0]
        if any(not k or len(k.encode()) > 1024 for k in keys) or len(set(keys)) != len(keys):
            return 40058
    return 0


async def _json(request: web.Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _error(errcode: int) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": ERRMSG.get(errcode, "error")}


def _answer(errcode: int) -> web.Response:
    return web.json_response(_error(errcode))


def _cdata(text: str) -> str:
    if "]]>" in text:
        return escape(text)
    return f"<![CDATA[{text}]]>"


def _cut_bytes(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


__all__ = ["CallbackResult", "CardState", "Delivered", "SimulatorError", "WeComSimulator"]
