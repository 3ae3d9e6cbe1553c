"""The daily 巡检 reads the pages given to /published and reports their 智能识错 findings (local HTTP server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp import web
from sqlmodel import select

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.proofread.lexicon import default_lexicon
from bot.services import page_check
from bot.services.page_check import PRIVATE, PublishedPage, check_pages, page_text
from storage.models import AuditEntry
from tests.flow import META, at, count, last_text, say, tap, texts
from tests.test_duty import DUTY
from tests.test_freshness import FRESHNESS

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday 08:00 Asia/Shanghai; 巡检 at 10:00

GOOD = (
    "<html><head><title>通知</title><script>var phone = '13912345678';</script></head>"
    "<body><div class='nav'>首页</div><p>台湾<b>总统</b>出席了活动。</p><p>设备按装完毕。</p></body></html>"
)
GBK = '<html><head><meta charset="gbk"></head><body><p>请拨打13912345678咨询。</p></body></html>'
CLEAN = "<html><body><p>各有关单位：为提高防汛应急处置能力，定于6月举行防汛演练。</p></body></html>"
SERVED: dict[str, list[str]] = {}  # the site's address -> the paths it was asked for


@pytest.fixture
async def site() -> AsyncIterator[str]:
    """A local web server: a page with findings, a GBK page, a clean one, a 404, one that hangs,
    one that redirects (twice) to the page with findings, one that redirects for ever."""
    never = asyncio.Event()
    requests: list[str] = []

    async def hang(_request: web.Request) -> web.Response:
        await never.wait()
        return web.Response(text="")

    pages = {
        "/good": (GOOD.encode(), "text/html; charset=utf-8"),
        "/gbk": (GBK.encode("gbk"), "text/html"),
        "/clean": (CLEAN.encode(), "text/html; charset=utf-8"),
    }

    async def serve(request: web.Request) -> web.Response:
        requests.append(request.path)
        if request.path == "/moved":
            raise web.HTTPFound("/moved-again")
        if request.path == "/moved-again":
            raise web.HTTPMovedPermanently(f"http://127.0.0.1:{port}/good")
        if request.path == "/to-intranet":
            raise web.HTTPFound(f"http://127.0.0.2:{port}/good")
        if request.path == "/loop":
            raise web.HTTPFound("/loop")
        if request.path not in pages:
            raise web.HTTPNotFound()
        body, content_type = pages[request.path]
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/hang", hang)
    app.router.add_get("/{page}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    SERVED[f"http://127.0.0.1:{port}"] = requests
    yield f"http://127.0.0.1:{port}"
    never.set()
    await runner.cleanup()


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    settings = stack_settings(
        database_url,
        {"duty": DUTY, "freshness": FRESHNESS, "findings": {"fetch_seconds": 2, "fetch_private": True}},
    )
    async with running_stack(settings, FrozenClock(START)) as running:
        yield running


async def publish(stack: Stack, links: list[str]) -> None:
    await say(stack, "wangxm", f"/submit 防汛通知\n{META}各有关单位：定于6月举行防汛演练。")
    for reviewer in ("wangxm", "zhangkz", "liuzr"):
        await tap(stack, reviewer, "同意")
    for link in links:
        await say(stack, "chenfb", f"/published 1 示范发布 {link}")
        assert "已登记" in last_text(stack, "chenfb")


async def test_the_inspection_reports_each_published_page(stack: Stack, site: str) -> None:
    await publish(stack, [f"{site}/good", f"{site}/gbk", f"{site}/clean", f"{site}/missing", f"{site}/hang"])
    await at(stack, hours=2)  # 10:00: the 巡检 card, then its pages
    card = next(
        d
        for d in stack.sim.inbox("zhaoli")
        if d.msgtype == "template_card"
        and d.payload["template_card"]["main_title"]["title"].startswith("【日常巡检】")
    )
    quote = card.payload["template_card"]["quote_area"]["quote_text"].splitlines()
    assert quote[:7] == [
        "新发布 5 条（自上次巡检）：",
        *["· 《防汛通知》· 示范发布"] * 5,
        "请检查：网站各栏目链接、错别字和过期信息；各账号最新内容和留言。",
    ]
    report = last_text(stack, "zhaoli")
    assert report.splitlines() == [
        "【巡检·网页识错】2026-11-23：自上次巡检以来登记发布的网页 5 个，2 个有疑似问题，2 个无法访问。请逐一核实，需要纠错的及时处理。",
        f"1. 《防汛通知》（示范发布）{site}/good",
        "   2 处疑似问题（1 处严重）：「台湾总统」→「台湾地区领导人」（严重·规范表述）；「按装」→「安装」（疑似·错别字）",
        f"2. 《防汛通知》（示范发布）{site}/gbk",
        "   1 处疑似问题（1 处严重）：「13912345678」→「139****5678」（严重·隐私）",
        f"3. 《防汛通知》（示范发布）{site}/clean",
        "   未发现疑似问题",
        f"4. 《防汛通知》（示范发布）{site}/missing",
        "   无法访问：网页返回 HTTP 404",
        f"5. 《防汛通知》（示范发布）{site}/hang",
        "   无法访问：访问超时",
    ]
    await at(stack, minutes=5)
    assert count(stack, "zhaoli", "【巡检·网页识错】") == 1, "once a day"
    async with stack.db() as session:
        entry = (await session.exec(select(AuditEntry).where(AuditEntry.action == "page_check"))).one()
    assert entry.details == {
        "day": "2026-11-23",
        "pages": 5,
        "unreachable": 2,
        "findings": 3,
        "severe_findings": 2,
    }


async def test_no_links_no_report_and_the_next_day_starts_after_this_one(stack: Stack, site: str) -> None:
    await at(stack, hours=2)
    assert count(stack, "zhaoli", "【巡检·网页识错】") == 0, "nothing published: nothing to report"
    await publish(stack, [f"{site}/clean"])
    await at(stack, hours=24)  # Tuesday 10:00: the page published on Monday after the 巡检 is Tuesday's
    reports = _texts_with(stack, "【巡检·网页识错】")
    assert len(reports) == 1 and "2026-11-24" in reports[0] and "网页 1 个" in reports[0]


async def test_the_first_check_looks_one_day_back_not_at_all_history(stack: Stack, site: str) -> None:
    await publish(stack, [f"{site}/good"])  # Monday 08:00, before any 巡检 ran
    stack.clock.advance(hours=50)  # type: ignore[attr-defined]  # the bot was off until Wednesday 10:00
    await at(stack)
    assert _texts_with(stack, "【巡检·网页识错】") == []


async def test_pages_on_the_units_own_network_are_not_read_by_default(site: str) -> None:
    port = site.rsplit(":", 1)[1]
    links = [
        f"{site}/good",
        f"http://localhost:{port}/good",
        f"http://[::1]:{port}/good",
        f"http://10.0.0.7:{port}/good",
        "http://169.254.169.254/latest/meta-data",
        "ftp://example.com/a",
    ]
    pages = [PublishedPage(link, "防汛通知", "示范发布") for link in links]
    results = await check_pages(default_lexicon(), pages, seconds_each=2)
    assert [r.error for r in results] == [PRIVATE] * 5 + ["不是网页链接"]
    assert all(r.findings == () for r in results)
    assert SERVED[site] == [], "nothing was asked of the local server"


async def test_redirects_are_followed_a_few_times_each_hop_checked(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = [PublishedPage(f"{site}/{path}", "防汛通知", "示范发布") for path in ("moved", "loop")]
    moved, loop = await check_pages(default_lexicon(), pages, seconds_each=2, allow_private=True)
    assert moved.error == "" and [f.text for f in moved.findings] == ["台湾总统", "按装"]
    assert loop.error == "重定向次数过多"
    assert [p for p in SERVED[site] if p != "/loop"] == ["/moved", "/moved-again", "/good"]
    assert SERVED[site].count("/loop") == 6, "the first request and five redirects"
    # the local server taken for a public one: its redirect into the intranet is refused there
    monkeypatch.setattr(page_check, "_public", lambda address: address == "127.0.0.1")
    SERVED[site].clear()
    (sent_inside,) = await check_pages(
        default_lexicon(), [PublishedPage(f"{site}/to-intranet", "防汛通知", "示范发布")]
    )
    assert sent_inside.error == PRIVATE and SERVED[site] == ["/to-intranet"]


def _texts_with(stack: Stack, needle: str) -> list[str]:
    return [t for user in ("zhaoli", "wangxm") for t in texts(stack, user) if needle in t]


def test_page_text_drops_scripts_and_keeps_words_across_inline_tags() -> None:
    assert page_text(GOOD.encode()) == "首页\n台湾总统出席了活动。\n设备按装完毕。"
    assert page_text(GBK.encode("gbk")) == "请拨打13912345678咨询。"
    assert page_text("<p>坏的编码</p>".encode(), "no-such-charset") == "坏的编码"


async def test_the_inspection_card_lists_accounts_close_to_their_deadline(stack: Stack) -> None:
    await at(stack, hours=2 + 4 * 24)  # Friday 10:00: 示范微博 (7 days, never posted) has 70 hours left
    card = [d for d in stack.sim.inbox("zhaoli") if d.msgtype == "template_card"][-1]
    quote = card.payload["template_card"]["quote_area"]["quote_text"].splitlines()
    assert quote[:3] == [
        "新发布 0 条（自上次巡检）",
        "临近更新期限 1 个账号：",
        "· 示范微博（微博）：剩余 2 天 22 小时，期限 11-30 08:00（无更新记录，自登记起算）",
    ]
