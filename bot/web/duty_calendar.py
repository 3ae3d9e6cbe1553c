"""Serving the duty calendar feeds: GET /ical/<token>.ics, opened by the secret in its path alone."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.services.duty_calendar import (
    CACHE_SECONDS,
    FEED_PATH,
    TOKEN_PATTERN,
    feed_for_token,
    feed_ics,
    feeds_enabled,
)
from storage import duty_repo
from storage.db import SessionFactory, reading

log = logging.getLogger(__name__)


def add_duty_calendar(
    app: web.Application, settings: Settings, *, clock: Clock, db: Callable[[], SessionFactory]
) -> None:
    """Serve the feeds when a fixed session secret and the public address are configured; the
    path never reaches a log line of ours (it is the secret)."""
    if not feeds_enabled(settings):
        log.info("web.session_secret or server.public_url is not set: no duty calendar feeds")
        return

    async def on_feed(request: web.Request) -> web.StreamResponse:
        async with reading(db())() as session:
            generations = await duty_repo.feed_generations(session)
            feed = feed_for_token(settings, request.match_info["token"], generations)
            if feed is None:
                raise web.HTTPNotFound()  # the same answer as for any path that does not exist
            body = await feed_ics(session, settings, feed, clock.now())
        return web.Response(
            body=body,
            content_type="text/calendar",
            charset="utf-8",
            headers={
                "Cache-Control": f"private, max-age={CACHE_SECONDS}",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    app.router.add_get(FEED_PATH.replace("{token}", "{token:" + TOKEN_PATTERN + "}"), on_feed)
