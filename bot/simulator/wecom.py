"""The simulated WeCom server: qyapi endpoints with WeCom's validation, errcodes and limits,
members' inboxes, card state, and callbacks encrypted and signed exactly as WeCom sends them.

Facts followed are in docs/wecom.md (its section numbers are cited below). Where WeCom's
documentation names no errcode for a case, the code used is marked "unverified" here.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from urllib.parse import quote, urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import escape

import aiohttp
from aiohttp import web

from bot.core.clock import Clock, FrozenClock
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
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # media/upload type=image: JPG or PNG, at most 10 MB
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
WEBHOOK_PER_MINUTE = 20  # §4.7
MEMBER_PER_HOUR = 1000  # §5.1
CALLBACK_RETRIES = 3  # §1.7: WeCom re-sends when it gets no HTTP 200
SEND_TYPES = frozenset({"text", "markdown", "template_card", "file", "textcard", "image", "news"})
INTERACTIVE = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
MAX_JUMPS = 3  # template_card.jump_list (§8.3; path/90236 field table)

# ---- H5 pages (§8): OAuth2 网页授权 and the app menu -------------------------------------------
# Verified against the 代开发 twins of the self-built pages (same text): path/96441 构造网页授权链接
# (2024/07/30: appid = CorpID, response_type fixed "code", scope snsapi_base | snsapi_privateinfo,
# state a-zA-Z0-9 ≤ 128 bytes, agentid "snsapi_privateinfo时必填否则报错", code ≤ 512 bytes,
# redirect to redirect_uri?code=CODE&state=STATE — state present even when empty) and path/96442
# 获取访问用户身份 (GET /cgi-bin/auth/getuserinfo; code single use, expires after 5 minutes unused;
# member → userid (+ user_ticket, valid 1800 s, only for snsapi_privateinfo); non-member → openid
# (≤ 64 bytes); errors 40029 "invalid code", 50001 when the redirect domain is not the app's
# trusted domain). Assumed: the HTTP status and wording of WeCom's error page (HTTP 200 here).
OAUTH_CODE_TTL = timedelta(minutes=5)
USER_TICKET_TTL = 1800
OAUTH_SCOPES = frozenset({"snsapi_base", "snsapi_privateinfo"})
STATE_RE = re.compile(r"^[A-Za-z0-9]{0,128}$")
SIM_USER_COOKIE = "sim_userid"  # who holds the simulated phone (set on the simulator's origin)
OAUTH_AUTHORIZE = "/connect/oauth2/authorize"
OAUTH_CHOOSE = "/connect/oauth2/sim_choose"
# Menu (path/90231 创建菜单, text mirrored in metacpan QQ::weixin::work::menu, 2021/03/18): 1–3
# buttons, 1–5 sub_buttons, name non-empty, top ≤ 16 bytes, sub ≤ 40 bytes; key (click-like
# types) ≤ 128 bytes; view url ≤ 1024 bytes; view_miniprogram needs appid + pagepath.
MENU_KEY_TYPES = frozenset(
    {
        "click",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
    }
)
MENU_TYPES = MENU_KEY_TYPES | {"view", "view_miniprogram"}
MENU_MAX_BUTTONS, MENU_MAX_SUB_BUTTONS = 3, 5
MENU_KEY_LIMIT, MENU_URL_LIMIT = 128, 1024

ERRMSG = {
    0: "ok",
    -1: "system busy",
    40001: "invalid credential",
    40005: "invalid file type",
    40006: "invalid file size",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40022: "invalid sub button level",
    40023: "invalid sub button size",
    40024: "invalid sub button type",
    40025: "invalid sub button name size",
    40026: "invalid sub button key size",
    40027: "invalid sub button url size",
    40029: "invalid code",
    40056: "invalid agentid",
    40058: "invalid parameter",
    41001: "access_token missing",
    42001: "access_token expired",
    42014: "taskid has existed or empty or exceed max len",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "reach max api daily quota limit",
    45033: "api concurrent out of limit",
    48002: "api forbidden",
    60011: "no privilege to access/modify contact/party/agent",
    60020: "not allow to access from your ip",
    60111: "userid not found",
    82001: "all touser & toparty & totag invalid",
    46003: "menu no exist",
    47001: "data format error",
    50001: "redirect uri is not in the app's trusted domain",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
    301002: "not allow operate another agent with this accesstoken",
}
# Menu and OAuth codes. Verified meanings (WeCom global code list 全局错误码, as mirrored in
# several third-party copies — the official page path/90313 was not read directly): 40016 按钮个数,
# 40017 按钮类型, 40018 按钮名字长度, 40019 按钮KEY长度, 40020 按钮URL长度, 40022 子菜单级数,
# 40023–40027 the same for sub-buttons, 40029 不合法的oauth_code, 46003 菜单未设置 ("menu no
# exist"), 47001 解析JSON/XML内容错误, 40056 不合法的agentid; 301002 "not allow operate another
# agent with this accesstoken" (reported for a token of app A used on agentid B). Assumed: which
# of them WeCom picks for a bad url scheme (40020/40027 here), a view_miniprogram without appid or
# pagepath (40058 here), a missing/non-numeric agentid (40056) versus another app's (301002).
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


def button_key(card: dict[str, Any], label: str) -> str | None:
    """The key of the button a person calls `label` on `card`: its exact text, or `label（…）`
    (同意 reads 同意（不涉密） at the 保密审查 stage), or None."""
    for button in card.get("button_list", []):
        if button["text"] == label or button["text"].startswith(label + "（"):
            return str(button["key"])
    return None


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


@dataclass
class OAuthCode:
    """A code WeCom put on redirect_uri: one person, one app, single use, 5 minutes (§8.1)."""

    userid: str
    scope: str
    agent_id: int | None
    redirect_host: str
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


@dataclass
class _Slowness:
    """The next `remaining` calls take `seconds` of real time after doing their work (so a
    client with a shorter timeout gives up on a call that succeeded) and move the clock on."""

    seconds: float
    remaining: int
    advance: timedelta


@dataclass
class _Sent:
    """A message/send remembered for enable_duplicate_check (§4.2)."""

    at: datetime
    answer: dict[str, Any]


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
        # 成员状态 as user/get reports it: 1 已激活 (default), 2 已禁用, 4 未激活, 5 退出企业
        self.member_status: dict[str, int] = {}
        # The app's 可见范围 (members it may read and message); None: the whole corp.
        self.visible: set[str] | None = None
        self.app_name = "审校助手"
        # 企业可信IP: when set, API calls from any other address answer 60020 (path/90475; since
        # 2022-06-20 for new self-built apps). gettoken itself still answers (assumed).
        self.trusted_ips: set[str] | None = None
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
        self._slow: dict[str, _Slowness] = {}
        self._outage: int | None = None  # HTTP status every qyapi call answers during an outage
        self._recent_sends: dict[str, _Sent] = {}  # request key → first delivery (duplicate check)
        self._member_sends: dict[str, deque[datetime]] = defaultdict(deque)
        self._robot_sends: dict[str, deque[datetime]] = defaultdict(deque)
        self._msgids = itertools.count(1)
        self._event_msgids = itertools.count(7_000_000_000_000_000_001)
        self._last_callback: tuple[dict[str, str], str] | None = None
        self.menu: dict[str, Any] | None = None  # the app menu as menu/create stored it
        # Host[:port] the app lists as 可信域名; when set, getuserinfo answers 50001 for codes
        # that were redirected anywhere else (path/96442). None: any host is trusted.
        self.trusted_domain: str | None = None
        self._oauth_codes: dict[str, OAuthCode] = {}
        self._http: aiohttp.ClientSession | None = None
        self.app = web.Application(client_max_size=MAX_FILE_BYTES + 1024 * 1024)
        self.app.router.add_get(f"{API}/gettoken", self._gettoken)
        self._route("/message/send", self._message_send)
        self._route("/message/update_template_card", self._update_template_card)
        self._route("/media/upload", self._media_upload)
        self.app.router.add_post(f"{API}/webhook/send", self._webhook_send)
        self._route("/auth/getuserinfo", self._auth_getuserinfo, method="GET")
        self._route("/user/getuserinfo", self._user_getuserinfo, method="GET")
        self._route("/agent/get", self._agent_get, method="GET")
        self._route("/user/get", self._user_get, method="GET")
        self._route("/menu/create", self._menu_create)
        self._route("/menu/get", self._menu_get, method="GET")
        self._route("/menu/delete", self._menu_delete, method="GET")
        self.app.router.add_get(OAUTH_AUTHORIZE, self._oauth_authorize)
        self.app.router.add_get(OAUTH_CHOOSE, self._oauth_choose)

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

    def outage(self, status: int = 503) -> None:
        """WeCom is unreachable: every qyapi call (token, send, robot …) answers HTTP `status`
        until `end_outage()`."""
        self._outage = status

    def end_outage(self) -> None:
        self._outage = None

    def clear_failures(self) -> None:
        """Whatever fail_next set up is cured (e.g. the admin added the server's IP)."""
        self._failures.clear()

    def slow_next(
        self, path: str, seconds: float, times: int = 1, *, advance: timedelta = timedelta(0)
    ) -> None:
        """The next `times` calls to `path` do their work, then answer after `seconds` of real
        time, and move the injected clock on by `advance` (a slow API in simulated time)."""
        if advance and not isinstance(self.clock, FrozenClock):
            raise ValueError("advance needs a FrozenClock: the real clock cannot be moved")
        self._slow[path] = _Slowness(seconds, times, advance)

    def deliveries(self, userid: str, msgtype: str = "text") -> dict[str, int]:
        """How many times each text (content) or card (task_id) reached `userid`."""
        counts: dict[str, int] = defaultdict(int)
        for delivered in self._inboxes.get(userid, []):
            if delivered.msgtype != msgtype:
                continue
            part = delivered.payload.get(msgtype, {})
            counts[str(part.get("task_id") or part.get("content") or part.get("media_id"))] += 1
        return dict(counts)

    def call_count(self, path: str) -> int:
        return sum(1 for called, _ in self.calls if called == path)

    def forget_history(self) -> None:
        """Forget every delivery, API call, card, response code, uploaded file and
        duplicate-check entry so far, so a long run (bench/soak_callbacks) measures the bot and
        not this record. What was sent before can no longer be tapped, updated or re-sent:
        call it when nothing is waiting."""
        for record in (self._inboxes, self._cards, self._codes, self._recent_sends, self.media):
            record.clear()
        self.calls.clear()
        self.dropped.clear()
        self.truncated.clear()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ---- qyapi -----------------------------------------------------------------------------

    def _route(
        self,
        path: str,
        handler: Callable[[web.Request], Awaitable[dict[str, Any]]],
        method: str = "POST",
    ) -> None:
        async def endpoint(request: web.Request) -> web.Response:
            if self._outage is not None:
                self.calls.append((path, {"outage": self._outage}))
                return web.Response(status=self._outage, text="service unavailable")
            denied = self._check_token(request)
            if denied is not None:
                return _answer(denied)
            if self.trusted_ips is not None and request.remote not in self.trusted_ips:
                self.calls.append((path, {"untrusted_ip": request.remote}))
                return web.json_response(
                    {
                        "errcode": 60020,
                        "errmsg": f"not allow to access from your ip, hint: [{secrets.token_hex(8)}], "
                        f"from ip: {request.remote}, more info at "
                        "https://open.work.weixin.qq.com/devtool/query?e=60020",
                    }
                )
            failure = self._failures.get(path)
            if failure is not None and failure.remaining > 0:
                failure.remaining -= 1
                self.calls.append((path, {"injected": failure.errcode}))
                return _answer(failure.errcode)
            answer = await handler(request)
            slow = self._slow.get(path)
            if slow is not None and slow.remaining > 0:
                slow.remaining -= 1
                if isinstance(self.clock, FrozenClock):  # slow_next allows an advance on no other
                    self.clock.advance(slow.advance)
                await asyncio.sleep(slow.seconds)  # the work is done; only the answer is late
            return web.json_response(answer)

        self.app.router.add_route(method, f"{API}{path}", endpoint)

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.calls.append(("/gettoken", {}))
        if self._outage is not None:
            return web.Response(status=self._outage, text="service unavailable")
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
        self.calls.append(("/message/send", body or {}))
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
        valid = [u for u in dict.fromkeys(targets) if self.is_visible(u)]
        invalid = [u.lower() for u in dict.fromkeys(targets) if not self.is_visible(u)]
        if not valid:
            return {**_error(81013), "invaliduser": "|".join(invalid)}
        repeat = self._duplicate(body)
        if repeat is not None:
            return repeat
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
        self._recent_sends[_send_key(body)] = _Sent(self.clock.now(), dict(answer))
        return answer

    def _duplicate(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """enable_duplicate_check (§4.2): the same request (targets, type, content) within
        duplicate_check_interval (default 1800 s, max 4 h) of an earlier delivery is not delivered
        again; WeCom answers ok. Assumed (unverified): the answer repeats the first send's msgid
        (and response_code), and every earlier delivery counts, whatever its own flag."""
        if body.get("enable_duplicate_check") != 1:
            return None
        interval = body.get("duplicate_check_interval", 1800)
        if not isinstance(interval, int) or not 0 < interval <= 4 * 3600:
            interval = 1800
        earlier = self._recent_sends.get(_send_key(body))
        if earlier is None or self.clock.now() - earlier.at >= timedelta(seconds=interval):
            return None
        log.info("simulator: duplicate message/send within %ss not delivered again", interval)
        return dict(earlier.answer)

    def _validate_content(self, msgtype: str, body: dict[str, Any]) -> int:
        part = body[msgtype]
        if msgtype in ("text", "markdown"):
            content = part.get("content")
            if not isinstance(content, str) or not content.strip():
                return 44004
            if msgtype == "markdown" and len(content.encode("utf-8")) > MARKDOWN_LIMIT:
                return 45002
        if msgtype in ("file", "image"):
            media = self.media.get(str(part.get("media_id", "")))
            if media is None or self.clock.now() - media.uploaded_at > MEDIA_TTL:
                return 40007
            if msgtype == "image" and media.kind != "image":  # assumed: a picture needs image media
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
            elif replacement is not None:  # always, when there is no button (checked above)
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
        if not isinstance(part, aiohttp.BodyPartReader) or part.name != "media":
            return _error(40058)
        content = await part.read()
        filename = part.filename or "file"
        if not 5 <= len(content) <= (MAX_IMAGE_BYTES if kind == "image" else MAX_FILE_BYTES):
            return _error(40006)
        if kind == "image" and not content.startswith(IMAGE_MAGIC):
            return _error(40005)  # 图片只支持 JPG、PNG
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
        if self._outage is not None:
            return web.Response(status=self._outage, text="service unavailable")
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

    # ---- H5: OAuth2 sign-in (网页授权登录, §8.1) -----------------------------------------------

    async def _oauth_authorize(self, request: web.Request) -> web.Response:
        """open.weixin.qq.com/connect/oauth2/authorize as the member's WeCom browser meets it."""
        query = request.query
        self.calls.append((OAUTH_AUTHORIZE, dict(query)))
        problem = self._authorize_problem(query)
        if problem:
            return _html("出错了", f"<p>{escape(problem)}</p>")
        userid = request.cookies.get(SIM_USER_COOKIE)
        if not userid:
            return self._chooser(request.path_qs)
        code = secrets.token_urlsafe(32)  # 43 chars; the doc allows up to 512 bytes
        agentid = query.get("agentid")
        self._oauth_codes[code] = OAuthCode(
            userid=userid,
            scope=query["scope"],
            agent_id=int(agentid) if agentid else None,
            redirect_host=urlsplit(query["redirect_uri"]).netloc,
            issued_at=self.clock.now(),
        )
        state = query.get("state", "")
        raise web.HTTPFound(_add_query(query["redirect_uri"], code=code, state=state))

    def _authorize_problem(self, query: Any) -> str:
        """The error WeCom's page would show for this authorize link, "" when it is valid."""
        if query.get("appid") != self.corp_id:
            return "参数错误：appid 必须是本企业的 CorpID"
        if query.get("response_type") != "code":
            return "参数错误：response_type 必须为 code"
        scope = query.get("scope")
        if scope not in OAUTH_SCOPES:
            return "参数错误：scope 无效（企业自建应用可用 snsapi_base 或 snsapi_privateinfo）"
        agentid = query.get("agentid")
        if agentid is not None and agentid != str(self.agent_id):
            return "无效的agentid参数"
        if scope == "snsapi_privateinfo" and agentid is None:
            return "参数错误：scope 为 snsapi_privateinfo 时必须填写 agentid"
        if not _is_http_url(query.get("redirect_uri")):
            return "redirect_uri 参数错误：必须是完整的 http 或 https 地址（需 urlencode）"
        if not STATE_RE.match(query.get("state", "")):
            return "state 参数错误：只能包含 a-zA-Z0-9，且不超过 128 个字节"
        return ""

    def _chooser(self, authorize_path_qs: str) -> web.Response:
        """No phone owner known yet: let the tester pick which member is holding the phone."""
        target = quote(authorize_path_qs)
        items = "".join(
            f'<li><a href="{OAUTH_CHOOSE}?userid={quote(userid)}&amp;next={target}">'
            f"{escape(name)}（{escape(userid)}）</a></li>"
            for userid, name in self.members.items()
        )
        return _html("模拟企业微信：选择身份", f"<p>请选择使用这台手机的成员：</p><ul>{items}</ul>")

    async def _oauth_choose(self, request: web.Request) -> web.Response:
        userid = request.query.get("userid", "")
        target = request.query.get("next", "")
        if userid not in self.members or not target.startswith(OAUTH_AUTHORIZE + "?"):
            return _html("出错了", "<p>模拟器：无效的身份选择</p>", status=400)
        response = web.HTTPFound(target)
        response.set_cookie(SIM_USER_COOKIE, userid, path="/", httponly=True, samesite="Lax")
        raise response

    def _redeem_oauth_code(self, request: web.Request, path: str) -> OAuthCode | int:
        """The grant behind the request's code, used up now; or the errcode WeCom answers."""
        value = request.query.get("code", "")
        self.calls.append((path, {"code": value}))
        code = self._oauth_codes.get(value)
        if code is None or code.used or self.clock.now() - code.issued_at > OAUTH_CODE_TTL:
            return 40029
        if self.trusted_domain is not None and code.redirect_host != self.trusted_domain:
            return 50001
        code.used = True
        return code

    async def _auth_getuserinfo(self, request: web.Request) -> dict[str, Any]:
        code = self._redeem_oauth_code(request, "/auth/getuserinfo")
        if isinstance(code, int):
            return _error(code)
        if code.userid not in self.members:
            return {**_error(0), "openid": self.openid(code.userid)}
        answer = {**_error(0), "userid": code.userid}
        if code.scope == "snsapi_privateinfo":
            answer.update(user_ticket=secrets.token_urlsafe(48), expires_in=USER_TICKET_TTL)
        return answer

    async def _user_getuserinfo(self, request: web.Request) -> dict[str, Any]:
        """The older path wechatpy's `oauth.get_user_info` calls; it answers UserId / OpenId."""
        code = self._redeem_oauth_code(request, "/user/getuserinfo")
        if isinstance(code, int):
            return _error(code)
        member = code.userid in self.members
        who = {"UserId": code.userid} if member else {"OpenId": self.openid(code.userid)}
        return {**_error(0), **who, "DeviceId": ""}

    def is_visible(self, userid: str) -> bool:
        return userid in self.members and (self.visible is None or userid in self.visible)

    async def _agent_get(self, request: web.Request) -> dict[str, Any]:
        """获取指定的应用详情 (path/90227): the app's name, 可见范围 and 可信域名; a corp may only
        read the app its access_token belongs to."""
        self.calls.append(("/agent/get", dict(request.query)))
        problem = self._agent_problem(request)
        if problem:
            return _error(problem)
        users = sorted(self.members if self.visible is None else self.visible & set(self.members))
        return {
            **_error(0),
            "agentid": self.agent_id,
            "name": self.app_name,
            "square_logo_url": "",
            "description": "",
            "allow_userinfos": {"user": [{"userid": u} for u in users]},
            "allow_partys": {"partyid": [1] if self.visible is None else []},
            "allow_tags": {"tagid": []},
            "close": 0,
            "redirect_domain": self.trusted_domain or "",
            "report_location_flag": 0,
            "isreportenter": 0,
            "home_url": "",
        }

    async def _user_get(self, request: web.Request) -> dict[str, Any]:
        """读取成员 (path/90196): a self-built app reads members within its 可见范围 only
        (60011 outside it), 60111 for a userid the corp does not have."""
        userid = request.query.get("userid", "")
        self.calls.append(("/user/get", {"userid": userid}))
        if userid not in self.members:
            return _error(60111)
        if not self.is_visible(userid):
            return _error(60011)
        return {
            **_error(0),
            "userid": userid,
            "name": self.members[userid],
            "department": [1],
            "status": self.member_status.get(userid, 1),
        }

    def openid(self, userid: str) -> str:
        """The stable openid WeCom gives a non-member of this corp (≤ 64 bytes)."""
        return "o" + hashlib.sha256(f"{self.corp_id}:{userid}".encode()).hexdigest()[:31]

    # ---- app menu (自定义菜单, §8.2) ------------------------------------------------------------

    def _agent_problem(self, request: web.Request) -> int:
        agentid = request.query.get("agentid", "")
        if not agentid.isdigit():
            return 40056
        return 301002 if int(agentid) != self.agent_id else 0

    async def _menu_create(self, request: web.Request) -> dict[str, Any]:
        body = await _json(request)
        self.calls.append(("/menu/create", body or {}))
        problem = self._agent_problem(request) or (47001 if body is None else _menu_problem(body))
        if problem or body is None:
            return _error(problem)
        self.menu = {"button": json.loads(json.dumps(body["button"]))}
        return _error(0)

    async def _menu_get(self, request: web.Request) -> dict[str, Any]:
        self.calls.append(("/menu/get", {}))
        problem = self._agent_problem(request) or (46003 if self.menu is None else 0)
        if problem:
            return _error(problem)
        return {**_error(0), **json.loads(json.dumps(self.menu))}

    async def _menu_delete(self, request: web.Request) -> dict[str, Any]:
        self.calls.append(("/menu/delete", {}))
        problem = self._agent_problem(request)
        if not problem:
            self.menu = None
        return _error(problem)

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
        """`userid` opens the app (§3.3: Event enter_agent, EventKey empty)."""
        self._require_member(userid)
        return await self._push(self._event_xml(userid, "enter_agent", ""))

    async def menu_click(self, userid: str, key: str) -> CallbackResult:
        """`userid` taps the menu button of type click whose key is `key` (§8.2)."""
        self._require_member(userid)
        self._require_menu_button("click", "key", key)
        return await self._push(self._event_xml(userid, "click", key))

    async def menu_view(self, userid: str, url: str) -> CallbackResult:
        """`userid` taps the view button opening `url`; WeCom reports it with EventKey = url."""
        self._require_member(userid)
        self._require_menu_button("view", "url", url)
        return await self._push(self._event_xml(userid, "view", url))

    def _require_menu_button(self, kind: str, field: str, value: str) -> None:
        """With a menu stored, a phone can only press a button that exists in it."""
        if self.menu is None:
            return
        leaves = _menu_leaves(self.menu)
        if not any(b.get("type") == kind and b.get(field) == value for b in leaves):
            raise SimulatorError(f"the app menu has no {kind} button with {field} {value!r}")

    def _event_xml(self, userid: str, event: str, key: str) -> str:
        return (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<FromUserName><![CDATA[{userid}]]></FromUserName>"
            f"<CreateTime>{self._now_ts()}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[{event}]]></Event><EventKey>{_cdata(key)}</EventKey>"
            f"<AgentID>{self.agent_id}</AgentID></xml>"
        )

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
                self._callback_url(),
                params=query,
                data=body.encode("utf-8"),
                headers={"Content-Type": "text/xml"},
            ) as resp:
                return CallbackResult(resp.status, await resp.text())
        except (aiohttp.ClientError, TimeoutError) as exc:  # no answer within 5 s: re-sent
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


def _send_key(body: dict[str, Any]) -> str:
    """What the duplicate check compares: the request without the check's own fields."""
    kept = {k: v for k, v in body.items() if k not in ("enable_duplicate_check", "duplicate_check_interval")}
    return json.dumps(kept, sort_keys=True, ensure_ascii=False)


def _card_problem(card: dict[str, Any], *, update: bool = False) -> int:
    """errcode for a malformed template_card, 0 when it is acceptable (§4.4)."""
    card_type = card.get("card_type")
    if card_type not in ("text_notice", "news_notice", *INTERACTIVE):
        return 40058
    if not card.get("main_title", {}).get("title") and not card.get("sub_title_text"):
        return 40058
    if len(card.get("horizontal_content_list", [])) > MAX_HORIZONTAL:
        return 40058
    # card_action: 0/absent none, 1 url (url required), 2 mini program (appid required); a
    # text_notice card must have one, of type 1 or 2. jump_list: ≤ 3 links, each with a title.
    # (path/90236 field tables, mirrored in cnblogs saplh/17575452 and zsmhub/workweixin.) The docs
    # name no errcode for these; 40058 "invalid parameter" is an assumption, as for other cards.
    if _link_problem(card.get("card_action"), required=card_type == "text_notice"):
        return 40058
    jumps = card.get("jump_list", [])
    if not isinstance(jumps, list) or len(jumps) > MAX_JUMPS:
        return 40058
    if any(_link_problem(jump, titled=True) for jump in jumps):
        return 40058
    if card_type == "button_interaction":
        buttons = card.get("button_list")
        if not update and (not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS):
            return 40058
        keys = [str(b.get("key", "")) for b in buttons or [] if b.get("type", 0) == 0]
        if any(not k or len(k.encode()) > 1024 for k in keys) or len(set(keys)) != len(keys):
            return 40058
    return 0


def _link_problem(action: Any, *, required: bool = False, titled: bool = False) -> bool:
    """Whether a card_action / jump_list entry is malformed (or missing when `required`)."""
    if action is None:
        return required
    if not isinstance(action, dict) or action.get("type", 0) not in (0, 1, 2):
        return True
    kind = action.get("type", 0)
    if required and kind == 0:
        return True
    if titled and not str(action.get("title") or "").strip():
        return True
    if kind == 1 and not _is_http_url(action.get("url")):
        return True
    return kind == 2 and not action.get("appid")


def _menu_problem(body: dict[str, Any]) -> int:
    """errcode for a malformed menu/create body, 0 when WeCom would accept it (§8.2)."""
    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MENU_MAX_BUTTONS:
        return 40016
    for button in buttons:
        if not isinstance(button, dict):
            return 40017
        subs = button.get("sub_button")
        if not subs and "type" in button:
            problem = _leaf_problem(button, sub=False)
        elif not isinstance(subs, list) or not 1 <= len(subs) <= MENU_MAX_SUB_BUTTONS:
            problem = 40023 if "sub_button" in button else 40017
        else:
            problem = _name_problem(button, sub=False) or next(
                (p for p in (_sub_problem(sub) for sub in subs) if p), 0
            )
        if problem:
            return problem
    return 0


def _sub_problem(sub: Any) -> int:
    if not isinstance(sub, dict):
        return 40024
    if sub.get("sub_button"):
        return 40022  # only two levels
    return _leaf_problem(sub, sub=True)


def _name_problem(button: dict[str, Any], *, sub: bool) -> int:
    name = button.get("name")
    limit = 40 if sub else 16
    if not isinstance(name, str) or not name.strip() or len(name.encode("utf-8")) > limit:
        return 40025 if sub else 40018
    return 0


def _leaf_problem(button: dict[str, Any], *, sub: bool) -> int:
    kind = button.get("type")
    if kind not in MENU_TYPES:
        return 40024 if sub else 40017
    problem = _name_problem(button, sub=sub)
    if problem:
        return problem
    if kind in MENU_KEY_TYPES:
        key = button.get("key")
        if not isinstance(key, str) or not key or len(key.encode("utf-8")) > MENU_KEY_LIMIT:
            return 40026 if sub else 40019
    if kind == "view":
        url = button.get("url")
        if not _is_http_url(url) or len(str(url).encode("utf-8")) > MENU_URL_LIMIT:
            return 40027 if sub else 40020
    if kind == "view_miniprogram" and not (button.get("appid") and button.get("pagepath")):
        return 40058
    return 0


def _menu_leaves(menu: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pressable button: top-level leaves and sub-buttons."""
    leaves: list[dict[str, Any]] = []
    for button in menu.get("button", []):
        leaves.extend(button.get("sub_button") or [button])
    return leaves


def _is_http_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _add_query(url: str, **params: str) -> str:
    """`url` with `params` appended to its query; existing parameters are kept as they were."""
    parts = urlsplit(url)
    extra = urlencode(list(params.items()))
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _html(title: str, body: str, *, status: int = 200) -> web.Response:
    """A page in WeCom's in-app browser (the simulator's own wording, not WeCom's)."""
    page = (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=page, status=status, content_type="text/html", charset="utf-8")


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


__all__ = [
    "SIM_USER_COOKIE",
    "CallbackResult",
    "CardState",
    "Delivered",
    "OAuthCode",
    "SimulatorError",
    "WeComSimulator",
]
