"""The app's custom menu (自定义菜单) and the once-a-day welcome when a member opens the app."""

from __future__ import annotations

from typing import Any

from bot import views
from bot.core.config import Settings
from bot.rules.calendar import local_day
from bot.services.review import my_pending
from bot.services.scope import Scope
from bot.wecom.dispatcher import menu_key
from storage.occasions_repo import claim_occasion

# Button labels (WeCom: a top-level name ≤ 16 bytes, a sub-button name ≤ 40 bytes).
SUBMIT_LABEL = "投稿"
PENDING_LABEL = "待办"
MORE_LABEL = "更多"
MINE_LABEL = "我的"
DUTY_LABEL = "值班"
ACCOUNTS_LABEL = "账号"
HOME_LABEL = "工作台"
HELP_LABEL = "帮助"

# The bot's own pages; they send a visitor without a session to WeCom sign-in themselves.
SUBMIT_PATH = "/app/submit"
HOME_PATH = "/app/"

WELCOME_KIND = "welcome"  # occasion kind: one greeting per person per local day
WELCOME_SHOWN = 3  # pending drafts listed in the greeting, longest waiting first


def _click(name: str, command: str) -> dict[str, Any]:
    return {"type": "click", "name": name, "key": menu_key(command)}


def _view(name: str, url: str) -> dict[str, Any]:
    return {"type": "view", "name": name, "url": url}


def app_menu(settings: Settings) -> dict[str, Any]:
    """The menu/create body; the page buttons only when `[server] public_url` is set."""
    base = settings.server.public_url
    top: list[dict[str, Any]] = []
    if base:
        top.append(_view(SUBMIT_LABEL, base + SUBMIT_PATH))
    top.append(_click(PENDING_LABEL, "pending"))
    more = [
        _click(MINE_LABEL, "mine"),
        _click(DUTY_LABEL, "duty"),
        _click(ACCOUNTS_LABEL, "accounts"),
    ]
    if base:
        more.append(_view(HOME_LABEL, base + HOME_PATH))
    more.append(_click(HELP_LABEL, "help"))
    top.append({"name": MORE_LABEL, "sub_button": more})
    return {"button": top}


def left_out_views(settings: Settings) -> list[str]:
    """The page buttons `app_menu` leaves out for want of a public_url."""
    return [] if settings.server.public_url else [SUBMIT_LABEL, HOME_LABEL]


def home_url(settings: Settings) -> str | None:
    base = settings.server.public_url
    return base + HOME_PATH if base else None


async def welcome(scope: Scope) -> str | None:
    """The greeting for opening the app, or None when this person was greeted today already.

    WeCom sends enter_agent every time the app is opened; the claim on (welcome, userid, local
    date) commits with the reply, so a person is greeted once a day across instances.
    """
    now = scope.now()
    today = local_day(now, scope.settings.tz).isoformat()
    claimed = await claim_occasion(
        session=scope.session,
        kind=WELCOME_KIND,
        subject=scope.user,
        occasion=today,
        at=now,
        by=scope.user,
    )
    if not claimed:
        return None
    pending = sorted(await my_pending(scope), key=lambda item: item[0].stage_entered_at)
    settings = scope.settings
    return views.welcome(scope.name_of(scope.user), pending, WELCOME_SHOWN, settings.tz, home_url(settings))
