"""Sign-in for the draft pages: WeCom OAuth2 (snsapi_base), an encrypted cookie session, CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.wecom.client import WeComAPIError, WeComClient, WeComTransportError

log = logging.getLogger(__name__)

SESSION_COOKIE = "sanshen_session"
CALLBACK_PATH = "/app/auth/callback"
USER, EXPIRES, CSRF, STATE, NEXT = "userid", "expires", "csrf", "oauth_state", "next"


class SignInRefused(Exception):
    """Sign-in did not produce a staff member; `message` is the Chinese page text."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def cookie_key(secret: str) -> bytes:
    """The 32-byte cookie encryption key derived from `[web] session_secret` (any length ≥ 32)."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def safe_next(target: str | None) -> str:
    """Only a path inside the workspace may follow sign-in (no open redirect)."""
    if target and target.startswith("/app/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/app/"


@dataclass(frozen=True)
class WebAuth:
    settings: Settings
    clock: Clock
    wecom: Callable[[], WeComClient]  # built at start-up

    async def user(self, request: web.Request) -> str | None:
        """The signed-in member, or None (no session, an expired one, or one for a former member)."""
        session = await get_session(request)
        userid, expires = session.get(USER), session.get(EXPIRES)
        if not userid or not isinstance(expires, int | float) or self.clock.now().timestamp() >= expires:
            return None
        if userid not in self.settings.staff_by_id:
            return None
        return str(userid)

    async def sign_in_redirect(self, request: web.Request) -> web.HTTPFound:
        """Send the browser to WeCom's authorize page; `state` binds the answer to this browser."""
        session = await get_session(request)
        state = secrets.token_hex(16)
        session[STATE] = state
        session[NEXT] = safe_next(request.path_qs)
        query = urlencode(
            {
                "appid": self.settings.wecom.corp_id,
                "redirect_uri": self.settings.server.public_url + CALLBACK_PATH,
                "response_type": "code",
                "scope": "snsapi_base",
                "state": state,
                "agentid": str(self.settings.wecom.agent_id),
            },
            quote_via=quote,
        )
        return web.HTTPFound(
            f"{self.settings.wecom.oauth_base}/connect/oauth2/authorize?{query}#wechat_redirect"
        )

    async def finish_sign_in(self, request: web.Request) -> str:
        """The OAuth callback: check state, exchange the code, start a fresh session; returns
        where to go next. Raises SignInRefused with the reason."""
        session = await get_session(request)
        expected, returned = session.get(STATE), request.query.get("state", "")
        code = request.query.get("code", "")
        if not expected or not hmac.compare_digest(str(expected).encode(), returned.encode()):
            log.warning("sign-in refused: state mismatch")
            raise SignInRefused("登录请求已失效或不是从本页面发起的，请从企业微信重新打开。", 400)
        if not code:
            raise SignInRefused("企业微信没有返回登录凭证，请重新打开。", 400)
        target = safe_next(session.get(NEXT))
        try:
            userid = await self.wecom().user_of_oauth_code(code)
        except WeComAPIError as exc:
            log.warning("sign-in refused: getuserinfo errcode %s", exc.errcode)
            raise SignInRefused(
                "登录凭证无效或已使用（有效期 5 分钟，只能用一次），请从企业微信重新打开。"
            ) from None
        except WeComTransportError:
            log.warning("sign-in failed: WeCom unreachable")
            raise SignInRefused("暂时无法连接企业微信完成登录，请稍后重试。", 503) from None
        if userid is None or userid not in self.settings.staff_by_id:
            log.warning("sign-in refused: %s is not in [[staff]]", userid or "a non-member")
            raise SignInRefused("您不在本单位审校助手的人员名单中，暂时无法使用。如需开通，请联系管理员。")
        fresh = await new_session(request)  # a new session id: nothing from before sign-in carries over
        fresh[USER] = userid
        fresh[EXPIRES] = int(self.clock.now().timestamp()) + self.settings.web.session_hours * 3600
        fresh[CSRF] = secrets.token_urlsafe(24)
        log.info("signed in %s", userid)
        return target


def csrf_token(session: Session) -> str:
    token = session.get(CSRF)
    if not token:
        token = session[CSRF] = secrets.token_urlsafe(24)
    return str(token)


def csrf_ok(session: Session, sent: str | None) -> bool:
    token = session.get(CSRF)
    return bool(token and sent and hmac.compare_digest(str(token).encode(), sent.encode()))
