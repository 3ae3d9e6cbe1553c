"""All handler routers, in matching order (first match wins)."""

from __future__ import annotations

from bot.dispatcher import Router
from handlers import basic, lifecycle, review, status


def all_routers() -> list[Router]:
    return [review.router, lifecycle.router, status.router, basic.router]
