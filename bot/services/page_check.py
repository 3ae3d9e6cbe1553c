"""Published pages in the daily 巡检: each link fetched, its text extracted and checked by 智能识错."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver
from selectolax.lexbor import LexborHTMLParser

from bot.proofread import Finding, Lexicon, check

log = logging.getLogger(__name__)

FETCH_SECONDS = 15.0  # a page that takes longer is reported as 访问超时
MAX_PAGE_BYTES = 3 * 1024 * 1024  # a government article page is far smaller; more is not read
MAX_PARALLEL = 4
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
PRIVATE = "内网地址，未访问"
_DROPPED = "script,style,noscript,template,iframe,object"
_BLOCKS = "p,div,br,li,h1,h2,h3,h4,h5,h6,tr,td,th,section,article,blockquote,dd,dt,table"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_-]+)""", re.I)


@dataclass(frozen=True)
class PublishedPage:
    """A link given to /published: the draft it carried and the account it went out on."""

    url: str
    title: str
    account: str


@dataclass(frozen=True)
class PageResult:
    """What the 巡检 found on one page: findings, or why the page could not be read."""

    page: PublishedPage
    findings: tuple[Finding, ...] = ()
    error: str = ""


class PageUnreadable(Exception):
    """The page could not be fetched or read; the message says why, in Chinese."""


class PrivateAddress(OSError):
    """A link's host is (or resolves only to) a loopback, private, link-local or reserved address."""


def _public(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_global


class PublicOnlyResolver(ThreadedResolver):
    """Resolves as usual but keeps only public addresses, so a link given to /published cannot
    make the 巡检 read the unit's own network (checked at connection time: a name that resolves
    differently a moment later gains nothing)."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        public = [r for r in await super().resolve(host, port, family) if _public(r["host"])]
        if not public:
            raise PrivateAddress(f"{host} resolves only to non-public addresses")
        return public


def guarded_session(*, allow_private: bool = False) -> aiohttp.ClientSession:
    """A session for reading published pages: public addresses only unless `allow_private`
    (config findings.fetch_private, for a unit whose site is on its intranet)."""
    resolver = None if allow_private else PublicOnlyResolver()
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=resolver, limit=MAX_PARALLEL))


async def fetch_text(
    http: aiohttp.ClientSession, url: str, *, seconds_each: float = FETCH_SECONDS, allow_private: bool = False
) -> str:
    """The readable text of the page at `url` (scripts and styles dropped, one line per block);
    redirects followed (at most MAX_REDIRECTS), each hop held to the same rules."""
    try:
        async with asyncio.timeout(seconds_each):
            for _ in range(MAX_REDIRECTS + 1):
                _check_link(url, allow_private)
                async with http.get(url, allow_redirects=False) as response:
                    location = response.headers.get("Location")
                    if response.status in _REDIRECTS and location:
                        url = urljoin(url, location)
                        continue
                    if response.status != 200:
                        raise PageUnreadable(f"网页返回 HTTP {response.status}")
                    body = await response.content.read(MAX_PAGE_BYTES + 1)
                    charset = response.charset
                    break
            else:
                raise PageUnreadable("重定向次数过多")
    except TimeoutError:
        raise PageUnreadable("访问超时") from None
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, PrivateAddress):
            raise PageUnreadable(PRIVATE) from None
        raise PageUnreadable(f"无法访问（{type(exc).__name__}）") from None
    except aiohttp.ClientError as exc:
        raise PageUnreadable(f"无法访问（{type(exc).__name__}）") from None
    if len(body) > MAX_PAGE_BYTES:
        raise PageUnreadable("页面过大，未检查")
    return page_text(body, charset)


def _check_link(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PageUnreadable("不是网页链接")
    if allow_private:
        return
    try:
        public = _public(parts.hostname)
    except ValueError:
        return  # a name: the session's resolver keeps it to public addresses
    if not public:
        raise PageUnreadable(PRIVATE)


def page_text(body: bytes, charset: str | None = None) -> str:
    """Text of an HTML page: its declared charset (header, then <meta>; GBK pages are common),
    scripts and styles dropped, a line per block element, blank lines squeezed."""
    declared = _META_CHARSET.search(body[:4096])
    encoding = charset or (declared.group(1).decode("ascii") if declared else "utf-8")
    try:
        markup = body.decode(encoding, errors="replace")
    except LookupError:  # an unknown charset name
        markup = body.decode("utf-8", errors="replace")
    tree = LexborHTMLParser(markup)
    for node in tree.css(_DROPPED):
        node.decompose()
    for node in tree.css(_BLOCKS):
        node.insert_after("\n")
    root = tree.body or tree.root
    text = root.text(separator="") if root is not None else ""
    lines = (line.strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


async def check_pages(
    lexicon: Lexicon,
    pages: list[PublishedPage],
    *,
    seconds_each: float = FETCH_SECONDS,
    allow_private: bool = False,
) -> list[PageResult]:
    """Every page fetched (a few at a time) and checked; an unreachable one is reported, not fatal."""
    gate = asyncio.Semaphore(MAX_PARALLEL)

    async def one(http: aiohttp.ClientSession, page: PublishedPage) -> PageResult:
        async with gate:
            try:
                text = await fetch_text(
                    http, page.url, seconds_each=seconds_each, allow_private=allow_private
                )
            except PageUnreadable as exc:
                log.warning("巡检 page %s unreadable: %s", page.url, exc)
                return PageResult(page, error=str(exc))
        found = await asyncio.to_thread(check, text, lexicon=lexicon)  # a long page: off the loop
        return PageResult(page, tuple(found))

    async with guarded_session(allow_private=allow_private) as http:
        return list(await asyncio.gather(*(one(http, page) for page in pages)))
