"""A member's WeCom built-in browser, simulated: signs in through the simulator's OAuth, reads pages, posts forms."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from bot.cli.stack import Stack
from bot.simulator import SIM_USER_COOKIE


@dataclass
class Page:
    status: int
    url: str
    text: str

    @property
    def plain(self) -> str:
        """The page's text without tags, as a reader sees it."""
        return html.unescape(re.sub(r"<[^>]+>", "", self.text))

    def section(self, css_class: str) -> str:
        """The readable text of the page's first <section|article class="…"> (for the demo)."""
        match = re.search(rf'<(section|article) class="{css_class}"[^>]*>(.*?)</\1>', self.text, re.S)
        return readable(match.group(2)) if match else ""

    def field(self, name: str) -> str:
        match = re.search(rf'name="{name}" value="([^"]*)"', self.text)
        assert match, f"no form field {name}"
        return html.unescape(match.group(1))


class Phone:
    """One person's browser: the simulator knows who holds it by a cookie on its own origin."""

    def __init__(self, stack: Stack, userid: str) -> None:
        self.stack = stack
        self.userid = userid
        self.jar = aiohttp.CookieJar(unsafe=True)  # loopback IPs keep their cookies
        self.jar.update_cookies({SIM_USER_COOKIE: userid}, URL(stack.settings.wecom.oauth_base))
        self.http = aiohttp.ClientSession(cookie_jar=self.jar)

    async def __aenter__(self) -> Phone:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.stack.bot_url + path

    async def get(self, path: str, *, follow: bool = True) -> Page:
        async with self.http.get(self.url(path), allow_redirects=follow) as resp:
            return Page(resp.status, str(resp.url), await resp.text())

    async def get_raw(self, path: str) -> aiohttp.ClientResponse:
        resp = await self.http.get(self.url(path), allow_redirects=False)
        await resp.read()
        resp.release()
        return resp

    async def post(self, path: str, data: Any, *, follow: bool = True) -> Page:
        async with self.http.post(self.url(path), data=data, allow_redirects=follow) as resp:
            result = Page(resp.status, str(resp.url), await resp.text())
        await self.stack.drain()
        return result

    async def post_form(
        self,
        path: str,
        fields: list[tuple[str, str]],
        files: Sequence[tuple[str, str, bytes]] = (),
    ) -> Page:
        """A multipart form as a browser sends it: text fields, then (field, file name, bytes)."""
        form = aiohttp.FormData(quote_fields=False)
        for name, value in fields:
            form.add_field(name, value)
        for name, filename, data in files:
            form.add_field(name, io.BytesIO(data), filename=filename, content_type="application/octet-stream")
        return await self.post(path, form)

    def fields(self, page: Page) -> list[tuple[str, str]]:
        """Every hidden field of the page's form, in order (what pressing its button sends)."""
        return [
            (html.unescape(n), html.unescape(v))
            for n, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
        ]

    async def decide(
        self,
        draft_id: int,
        decision: str,
        *,
        opinion: str = "",
        checks: list[str] | None = None,
        page: Page | None = None,
        marks: dict[int, str] | None = None,
        **overrides: str,
    ) -> Page:
        """Fill in the decision form of the draft page as it was shown (or as it is now); `marks`
        picks a mark (verified, fixed, false_alarm) for 智能识错 findings by number."""
        page = page or await self.get(f"/app/drafts/{draft_id}/")
        form: list[tuple[str, str]] = [
            ("csrf", page.field("csrf")),
            ("version", page.field("version")),
            ("round", page.field("round")),
            ("stage", page.field("stage")),
            ("opinion", opinion),
            ("decision", decision),
        ]
        form = [(k, overrides.get(k, v)) for k, v in form]
        form += [("check", item) for item in checks or []]
        form += [(f"mark-{number}", mark) for number, mark in (marks or {}).items()]
        return await self.post(f"/app/drafts/{draft_id}/decide", form)


def readable(fragment: str) -> str:
    """HTML as a reader sees it, one block per line: pictures as [图片], table cells split by |."""
    text = re.sub(r"<img[^>]*>", "[图片]", fragment)
    text = re.sub(r"</p>\s*(</t[dh]>)", r"\1", text)
    text = re.sub(r"</t[dh]>\s*<t[dh][^>]*>", " | ", text)
    text = re.sub(r"</(p|h[1-6]|tr|li|dt|dd|legend|label)>|<br\s*/?>", "\n", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())
