"""`[wecom] proxy`: every WeCom API call goes through the configured forward proxy, with its login."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from bot.cli.main import _secrets
from bot.cli.online_check import check_online
from bot.cli.stack import running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.core.config import REAL_WECOM_API
from bot.core.log import RedactFilter
from bot.wecom.client import proxy_arguments
from storage.models import OutboxMessage
from tests.flow import texts

LOGIN = ("sanshen", "p@ss word:1")  # characters a URL must escape


class ForwardProxy:
    """A plain HTTP forward proxy, as a unit's network runs one: requests arrive in absolute form
    (what aiohttp sends a proxy for an http:// address), are checked for the login when one is
    required, recorded, and passed on."""

    def __init__(self, login: tuple[str, str] | None) -> None:
        self.expected = "Basic " + base64.b64encode(":".join(login).encode()).decode() if login else None
        self.seen: list[tuple[str, str | None]] = []  # (path, Proxy-Authorization)
        self.url = ""

    async def forward(self, request: web.Request) -> web.Response:
        given = request.headers.get("Proxy-Authorization")
        self.seen.append((request.path, given))
        if self.expected is not None and given != self.expected:
            return web.Response(status=407, headers={"Proxy-Authenticate": 'Basic realm="proxy"'})
        target = request.url  # the absolute form: the address the client asked the proxy for
        kept = {k: v for k, v in request.headers.items() if k.lower() == "content-type"}
        async with (
            aiohttp.ClientSession() as http,
            http.request(request.method, target, data=await request.read(), headers=kept) as answer,
        ):
            return web.Response(
                status=answer.status, body=await answer.read(), content_type=answer.content_type
            )

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[ForwardProxy]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield self
        finally:
            await runner.cleanup()


def with_login(url: str, login: tuple[str, str]) -> str:
    user, password = (quote(part, safe="") for part in login)
    return url.replace("http://", f"http://{user}:{password}@", 1)


async def test_wecom_calls_go_through_the_proxy_with_its_login_and_the_password_is_never_logged(
    database_url: str, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ForwardProxy(LOGIN).serving() as proxy:
        settings = stack_settings(database_url, {"wecom": {"proxy": with_login(proxy.url, LOGIN)}})
        async with running_stack(settings, clock) as stack:
            assert (await stack.sim.send_text("wangxm", "/help")).status == 200
            await stack.drain()
            (reply,) = texts(stack, "wangxm")
            assert "/help" in reply
    assert [path for path, _ in proxy.seen] == ["/cgi-bin/gettoken", "/cgi-bin/message/send"]
    assert {login for _, login in proxy.seen} == {proxy.expected}
    assert LOGIN[1] not in caplog.text and quote(LOGIN[1], safe="") not in caplog.text


async def test_a_proxy_refusing_the_login_loses_nothing_the_message_waits_for_a_retry(
    database_url: str, clock: FrozenClock
) -> None:
    async with ForwardProxy(LOGIN).serving() as proxy:
        wrong = with_login(proxy.url, (LOGIN[0], "wrong"))
        async with running_stack(stack_settings(database_url, {"wecom": {"proxy": wrong}}), clock) as stack:
            assert (await stack.sim.send_text("wangxm", "/help")).status == 200
            await stack.drain()
            assert texts(stack, "wangxm") == []
            async with stack.db() as session:
                (row,) = (await session.exec(select(OutboxMessage))).all()
            assert (row.status, row.last_error) == ("pending", "/cgi-bin/gettoken: HTTP 407")
            assert row.not_before > clock.now()
    assert [path for path, _ in proxy.seen] == ["/cgi-bin/gettoken"]


async def test_check_online_names_the_proxy_when_it_cannot_be_reached(
    database_url: str, clock: FrozenClock
) -> None:
    async with ForwardProxy(None).serving() as proxy:
        closed = proxy.url  # nothing listens there once the proxy has stopped
    settings = stack_settings(database_url, {"wecom": {"proxy": with_login(closed, LOGIN)}})
    async with aiohttp.ClientSession() as http:
        (finding,) = await check_online(settings, http, clock=clock)
    assert not finding.ok
    assert finding.line.startswith(f"wecom.proxy: 经代理 {closed} 无法连接 {settings.wecom.api_base}")
    assert LOGIN[0] not in finding.line


def test_to_the_real_wecom_the_login_goes_with_the_connect_never_inside_the_tunnel() -> None:
    """To https://qyapi… aiohttp opens a CONNECT tunnel: the proxy's login must ride on the
    CONNECT (proxy_headers), not on the request inside the tunnel, which WeCom would read."""
    settings = stack_settings("sqlite+aiosqlite:///unused.db", {"wecom": {"api_base": REAL_WECOM_API}})
    proxied = settings.wecom.model_copy(update={"proxy": with_login("http://10.0.0.8:3128", LOGIN)})
    expected = "Basic " + base64.b64encode(":".join(LOGIN).encode()).decode()
    assert proxy_arguments(proxied) == {
        "proxy": "http://10.0.0.8:3128",
        "proxy_headers": {"Proxy-Authorization": expected},
    }
    assert proxy_arguments(settings.wecom) == {}
    ipv6 = settings.wecom.model_copy(update={"proxy": "http://[fd00::8]:3128"})
    assert proxy_arguments(ipv6) == {"proxy": "http://[fd00::8]:3128"}


def test_the_proxy_password_is_masked_in_log_lines_as_written_and_as_meant() -> None:
    settings = stack_settings(
        "sqlite+aiosqlite:///unused.db", {"wecom": {"proxy": with_login("http://10.0.0.8:3128", LOGIN)}}
    )
    record = logging.LogRecord(
        "t", logging.INFO, __file__, 1, "login %s, in the URL %s", (LOGIN[1], settings.wecom.proxy), None
    )
    RedactFilter(_secrets(settings)).filter(record)
    assert LOGIN[1] not in record.getMessage() and quote(LOGIN[1], safe="") not in record.getMessage()
