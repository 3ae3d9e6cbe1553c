"""Mounting the workspace on the bot's aiohttp app: cookie sessions, security headers, routes, styles."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.web.auth import SESSION_COOKIE, WebAuth, cookie_key
from bot.web.dashboard import DashboardPage
from bot.web.pages import Handler, Workspace, security_headers, templates
from bot.web.submit import SubmitPages
from bot.wecom.client import WeComClient
from storage.db import SessionFactory
from storage.file_store import FileStore

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


def add_workspace(
    app: web.Application,
    settings: Settings,
    *,
    clock: Clock,
    db: Callable[[], SessionFactory],
    wecom: Callable[[], WeComClient],
    kick: Callable[[], None],
) -> Workspace | None:
    """Serve the pages under /app when `[server] public_url` says where phones reach them."""
    if not settings.server.public_url:
        log.info("server.public_url is not set: no draft pages; drafts go to chat as text")
        return None
    secret = settings.web.session_secret or secrets.token_hex(32)
    storage = EncryptedCookieStorage(
        cookie_key(secret),
        cookie_name=SESSION_COOKIE,
        path="/app",
        httponly=True,
        samesite="Lax",
        secure=settings.server.public_url.startswith("https://"),
        max_age=settings.web.session_hours * 3600,
    )
    workspace = Workspace(
        settings=settings,
        clock=clock,
        auth=WebAuth(settings, clock, wecom),
        files=FileStore(settings.storage.files_dir),
        db=db,
        kick=kick,
        env=templates(),
    )
    # A sub-application: sessions and page headers stay off the callback path.
    limit = upload_limit(settings)

    @web.middleware
    async def upload_size(request: web.Request, handler: Handler) -> web.StreamResponse:
        # aiohttp takes the body limit from the root app (the callback's 512 KiB): the pages
        # accept uploads up to [web] max_upload_mb.
        return await handler(request.clone(client_max_size=limit))

    pages = web.Application(middlewares=[upload_size, security_headers])
    setup_sessions(pages, storage)
    pages.router.add_routes(workspace.routes())
    pages.router.add_routes(SubmitPages(workspace).routes())
    pages.router.add_routes(DashboardPage(workspace).routes())
    pages.router.add_static("/static/", STATIC, append_version=False)
    # before the sub-app, whose prefix would otherwise claim "/app" itself and answer 404
    app.router.add_get("/app", _to_home)
    app.add_subapp("/app", pages)
    app.router.add_get("/favicon.ico", _no_icon)  # browsers ask on every page; none is needed
    return workspace


def upload_limit(settings: Settings) -> int:
    """The largest request body the pages accept: the upload limit plus room for the form."""
    return settings.web.max_upload_mb * 1024 * 1024 + 256 * 1024


async def _to_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/app/")


async def _no_icon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)
