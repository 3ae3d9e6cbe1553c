"""The WeCom callback endpoint: GET URL verification, POST verify → decrypt → parse → apply."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.work.crypto import WeChatCrypto
from wechatpy.work.exceptions import InvalidCorpIdException

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.metrics import CALLBACK_SECONDS, CALLBACKS
from bot.wecom.dispatcher import Dispatcher
from bot.wecom.events import EventParseError, parse_event, parse_xml

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


def expected_signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """msg_signature: SHA1 over the four strings sorted (docs/wecom.md §1.4)."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()).hexdigest()


def _params(request: web.Request, *names: str) -> list[str] | None:
    values = [request.query.get(name, "") for name in names]
    return values if all(values) else None


@dataclass(frozen=True)
class CallbackEndpoint:
    """GET and POST on the callback URL; the dispatcher is looked up per request (built at start)."""

    settings: Settings
    clock: Clock
    crypto: WeChatCrypto
    dispatcher: Callable[[], Dispatcher]

    async def verify_url(self, request: web.Request) -> web.Response:
        """GET: answer the decrypted echostr so the admin console accepts the URL (within 1 s)."""
        params = _params(request, "msg_signature", "timestamp", "nonce", "echostr")
        if params is None:
            log.warning("URL verification without its parameters")
            return web.Response(status=400, text="missing parameters")
        signature, timestamp, nonce, echostr = params
        settings = self.settings
        refused = self._stale(timestamp, "URL verification")
        if refused is not None:
            return refused
        if not hmac.compare_digest(
            expected_signature(settings.wecom.token, timestamp, nonce, echostr), signature
        ):
            log.warning("URL verification: bad signature")
            return web.Response(status=403, text="bad signature")
        try:
            echo = self.crypto.check_signature(signature, timestamp, nonce, echostr)
        except InvalidCorpIdException:
            log.warning("URL verification: echostr for another corp")
            return web.Response(status=403, text="bad receive id")
        except Exception as exc:  # malformed base64 / padding
            log.warning("URL verification: undecryptable echostr (%s)", type(exc).__name__)
            return web.Response(status=400, text="bad echostr")
        return web.Response(text=echo, content_type="text/plain")

    def _stale(self, timestamp: str, what: str) -> web.Response | None:
        """400 for a timestamp that is not a number, 403 outside the ±tolerance window, else None."""
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            log.warning("%s refused: timestamp is not a number", what)
            return web.Response(status=400, text="bad timestamp")
        skew = abs(self.clock.now().timestamp() - int(timestamp))
        if skew > self.settings.wecom.timestamp_tolerance_seconds:
            log.warning("%s refused: timestamp %s is %ds off", what, timestamp, int(skew))
            return web.Response(status=403, text="stale timestamp")
        return None

    async def receive(self, request: web.Request) -> web.Response:
        """POST: nothing is acknowledged before the event and its replies are committed."""
        params = _params(request, "msg_signature", "timestamp", "nonce")
        if params is None:
            log.warning("callback without signature parameters")
            return web.Response(status=400, text="missing parameters")
        signature, timestamp, nonce = params
        settings = self.settings
        refused = self._stale(timestamp, "callback")
        if refused is not None:
            return refused
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return web.Response(status=413, text="too large")  # refused before reading it
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:  # chunked: no Content-Length to refuse it by
            return web.Response(status=413, text="too large")
        try:
            envelope = parse_xml(raw.decode("utf-8"))["xml"]
            encrypted = str(envelope["Encrypt"])
        except Exception as exc:
            log.warning("callback refused: malformed envelope (%s)", type(exc).__name__)
            return web.Response(status=400, text="malformed body")
        if not hmac.compare_digest(
            expected_signature(settings.wecom.token, timestamp, nonce, encrypted), signature
        ):
            log.warning("callback refused: bad signature")
            return web.Response(status=403, text="bad signature")
        try:
            xml = self.crypto.decrypt_message({"Encrypt": encrypted}, signature, timestamp, nonce)
        except (InvalidSignatureException, InvalidCorpIdException) as exc:
            log.warning("callback refused: %s", type(exc).__name__)
            return web.Response(status=403, text="refused")
        except Exception as exc:
            log.warning("callback refused: undecryptable (%s)", type(exc).__name__)
            return web.Response(status=400, text="undecryptable")
        try:
            event = parse_event(xml)
        except EventParseError as exc:  # the reason names the field, never its value
            log.warning("callback refused: %s", exc)
            return web.Response(status=400, text="unreadable event")
        # Storage failures propagate as HTTP 500: WeCom then re-sends, and nothing was half-applied.
        await self.dispatcher().feed(event)
        return web.Response(status=200, text="")


def add_callback_routes(app: web.Application, path: str, endpoint: CallbackEndpoint) -> None:
    app.router.add_get(path, _measured(endpoint.verify_url, "verified"))
    app.router.add_post(path, _measured(endpoint.receive, "ok"))


def _measured(
    handler: Callable[[web.Request], Awaitable[web.Response]], ok: str
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Count each callback by outcome (`ok`, or the refusal's own words: bad signature, stale
    timestamp …) and time it."""

    async def measured(request: web.Request) -> web.Response:
        began = time.perf_counter()
        response = await handler(request)
        CALLBACK_SECONDS.observe(time.perf_counter() - began)
        CALLBACKS.labels(ok if response.status == 200 else (response.text or str(response.status))).inc()
        return response

    return measured
