"""The one async WeCom API client: token cache, typed errors, message/send and card updates."""

from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp

from bot.core.clock import Clock
from bot.core.config import WeComSettings
from bot.core.metrics import WECOM_CALLS, WECOM_ERRORS

log = logging.getLogger(__name__)

# invalid / expired / missing access_token: always drop the cached token, refetch and retry
TOKEN_ERRORS = frozenset({40014, 42001, 41001})
TOKEN_TRIES = 3  # within one call; a caller (the outbox) retries later beyond that
# Codes worth retrying later (system busy, frequency limits).
TRANSIENT_ERRORS = frozenset({-1, 45009, 45033})
# Codes that only an administrator can cure (docs/wecom.md §1.1, §5.2): the server's IP is not among the
# app's 可信IP, the API or the recipients are outside the app's permissions or visible scope,
# the secret or CorpID is wrong, the robot key was removed. Retrying at full speed cannot help;
# retrying now and then notices when someone has fixed it.
ADMIN_ERRORS = frozenset({60020, 48002, 81013, 82001, 60111, 40003, 60011, 40001, 40013, 93000})
# Of those, the ones about who receives the message rather than about the app as a whole.
RECIPIENT_ERRORS = frozenset({81013, 82001, 60111, 40003, 60011})
REFRESH_MARGIN = timedelta(minutes=5)


class WeComAPIError(Exception):
    """WeCom answered errcode != 0."""

    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"{path}: errcode {errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path

    @property
    def transient(self) -> bool:
        return self.errcode in TRANSIENT_ERRORS or self.errcode in TOKEN_ERRORS

    @property
    def needs_admin(self) -> bool:
        return self.errcode in ADMIN_ERRORS


class WeComTransportError(Exception):
    """The API could not be reached (connection, timeout, non-JSON answer)."""


def proxy_address(wecom: WeComSettings) -> str:
    """`[wecom] proxy` without its user and password: what may be shown and logged ("" for none)."""
    return "http://" + urlsplit(wecom.proxy).netloc.rpartition("@")[2] if wecom.proxy else ""


def proxy_arguments(wecom: WeComSettings) -> dict[str, Any]:
    """A request's proxy arguments for aiohttp: none, or the proxy's address and, when it names
    a user, a Proxy-Authorization header, Basic in UTF-8 (RFC 7617; aiohttp does not read a login
    in a proxy URL). To an https address it goes with the CONNECT that opens the tunnel, never
    inside it; to a plain http address (a simulator) with the request the proxy relays."""
    if not wecom.proxy:
        return {}
    parts = urlsplit(wecom.proxy)
    arguments: dict[str, Any] = {"proxy": proxy_address(wecom)}
    if parts.username is not None:
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        header = {"Proxy-Authorization": "Basic " + base64.b64encode(login).decode("ascii")}
        arguments["proxy_headers" if wecom.api_base.startswith("https://") else "headers"] = header
    return arguments


@dataclass
class _Token:
    value: str
    expires_at: datetime


class WeComClient:
    """Calls qyapi over a shared aiohttp session; never blocks the event loop."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        corp_id: str,
        secret: str,
        agent_id: int,
        clock: Clock,
        timeout: float = 10.0,
        proxy: dict[str, Any] | None = None,
    ) -> None:
        self._session = session
        self._proxy = proxy or {}  # aiohttp's proxy arguments for every request (proxy_arguments)
        self._base = base_url.rstrip("/")
        self._corp_id = corp_id
        self._secret = secret
        self.agent_id = agent_id
        self._clock = clock
        self.last_ok_at: datetime | None = None  # /healthz: the last call WeCom answered errcode 0
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token: _Token | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_app(cls, session: aiohttp.ClientSession, wecom: WeComSettings, clock: Clock) -> WeComClient:
        """The client of the app `[wecom]` configures (through its proxy, if any)."""
        return cls(
            session,
            base_url=wecom.api_base,
            corp_id=wecom.corp_id,
            secret=wecom.secret,
            agent_id=wecom.agent_id,
            clock=clock,
            proxy=proxy_arguments(wecom),
        )

    async def _fetch_json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self._base}{path}"
        try:
            async with self._session.request(
                method, url, timeout=self._timeout, **self._proxy, **kwargs
            ) as resp:
                if resp.status != 200:
                    raise WeComTransportError(f"{path}: HTTP {resp.status}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WeComTransportError(f"{path}: {type(exc).__name__}") from exc
        if not isinstance(data, dict):
            raise WeComTransportError(f"{path}: unexpected answer")
        return data

    def _fresh_token(self) -> str | None:
        token = self._token
        if token and token.expires_at - REFRESH_MARGIN > self._clock.now():
            return token.value
        return None

    async def access_token(self) -> str:
        """A cached access_token, fetched again 5 minutes before it expires (double-checked)."""
        cached = self._fresh_token()
        if cached:
            return cached
        async with self._lock:
            cached = self._fresh_token()
            if cached:
                return cached
            data = await self._fetch_json(
                "GET",
                "/cgi-bin/gettoken",
                params={"corpid": self._corp_id, "corpsecret": self._secret},
            )
            errcode = int(data.get("errcode", 0))
            if errcode != 0:
                raise WeComAPIError(errcode, str(data.get("errmsg", "")), "/cgi-bin/gettoken")
            self._token = _Token(
                value=str(data["access_token"]),
                expires_at=self._clock.now() + timedelta(seconds=int(data.get("expires_in", 7200))),
            )
            log.info("access_token refreshed")
            return self._token.value

    async def call(
        self,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        data: aiohttp.FormData | None = None,
        params: dict[str, str] | None = None,
        method: str = "POST",
    ) -> dict[str, Any]:
        """Call an access_token API; on 40014/42001/41001 drop the token, refetch it and retry
        (up to TOKEN_TRIES times in this call; the error is transient for the caller after that)."""
        for attempt in range(1, TOKEN_TRIES + 1):
            token = await self.access_token()
            query = {"access_token": token, **(params or {})}
            body = await self._fetch_json(method, path, params=query, json=json, data=data)
            errcode = int(body.get("errcode", 0))
            if errcode == 0:
                WECOM_CALLS.labels(path).inc()
                self.last_ok_at = self._clock.now()
                return body
            WECOM_ERRORS.labels(path, str(errcode)).inc()
            if errcode in TOKEN_ERRORS and attempt < TOKEN_TRIES:
                log.info("%s answered %s; refreshing access_token", path, errcode)
                if self._token is not None and self._token.value == token:
                    self._token = None  # unless a concurrent call already replaced it
                continue
            if errcode in TOKEN_ERRORS and self._token is not None and self._token.value == token:
                self._token = None  # the next call starts with a fresh token
            raise WeComAPIError(errcode, str(body.get("errmsg", "")), path)
        raise AssertionError("unreachable")

    async def send_message(
        self, message: dict[str, Any], *, duplicate_check_seconds: int = 0
    ) -> dict[str, Any]:
        """message/send; `message` has touser/msgtype/body, agentid is filled in. With
        `duplicate_check_seconds`, WeCom delivers an identical request within that many seconds
        only once and answers ok to the repeat (enable_duplicate_check, docs/wecom.md §4.2; max 4 h)."""
        body = {**message, "agentid": self.agent_id}
        if duplicate_check_seconds > 0:
            body["enable_duplicate_check"] = 1
            body["duplicate_check_interval"] = min(int(duplicate_check_seconds), 4 * 3600)
        return await self.call("/cgi-bin/message/send", json=body)

    async def update_template_card(self, update: dict[str, Any]) -> dict[str, Any]:
        """message/update_template_card with a single-use response_code."""
        payload = {**update, "agentid": self.agent_id}
        return await self.call("/cgi-bin/message/update_template_card", json=payload)

    async def upload_file(self, filename: str, content: bytes, *, kind: str = "file") -> str:
        """media/upload (type file, or image: JPG/PNG up to 10 MB); returns the media_id (valid 3 days)."""
        form = aiohttp.FormData(quote_fields=False)  # a raw UTF-8 filename, as curl sends it
        content_type = "image/png" if kind == "image" else "application/octet-stream"
        form.add_field("media", content, filename=filename, content_type=content_type)
        body = await self.call("/cgi-bin/media/upload", data=form, params={"type": kind})
        return str(body["media_id"])

    async def user_of_oauth_code(self, code: str) -> str | None:
        """auth/getuserinfo: the member a 网页授权 code belongs to, or None for a non-member
        (WeCom answers openid instead). A used, expired or forged code raises errcode 40029."""
        body = await self.call("/cgi-bin/auth/getuserinfo", params={"code": code}, method="GET")
        userid = body.get("userid") or body.get("UserId")
        return str(userid) if userid else None

    async def create_menu(self, menu: dict[str, Any]) -> None:
        """menu/create for this app (replaces the whole menu)."""
        await self.call("/cgi-bin/menu/create", json=menu, params={"agentid": str(self.agent_id)})

    async def get_menu(self) -> dict[str, Any]:
        """menu/get for this app: {"button": [...]}."""
        return await self.call("/cgi-bin/menu/get", params={"agentid": str(self.agent_id)}, method="GET")

    async def send_webhook(self, key: str, message: dict[str, Any]) -> None:
        """Group robot webhook/send (the key is the credential; no access_token)."""
        body = await self._fetch_json("POST", "/cgi-bin/webhook/send", params={"key": key}, json=message)
        errcode = int(body.get("errcode", 0))
        if errcode != 0:
            raise WeComAPIError(errcode, str(body.get("errmsg", "")), "/cgi-bin/webhook/send")
