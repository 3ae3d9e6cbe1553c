"""All handler routers, in matching order (first match wins)."""

from __future__ import annotations

from bot.wecom.dispatcher import Router
from handlers import (
    accounts,
    basic,
    corrections,
    duty,
    export,
    findings,
    lifecycle,
    menu,
    proof,
    recheck,
    review,
    status,
)


def all_routers() -> list[Router]:
    return [
        review.router,
        proof.router,
        lifecycle.router,
        status.router,
        findings.router,
        export.router,
        duty.router,
        accounts.router,
        recheck.router,
        corrections.router,
        menu.router,
        basic.router,
    ]
