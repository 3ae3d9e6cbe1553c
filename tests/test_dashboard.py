"""The 概况 page for leaders and admins: its figures equal what the test did through the real flows
(drafts submitted and decided, 错情, /posted and /published, pauses, the rotation, /alert and 收到),
others are refused, and it fits a phone screen with its SVG charts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.cli.browser import Page, Phone, readable
from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from tests.conftest import T0
from tests.flow import META, at, say, tap
from tests.test_browser import OpenPhone, phone_of, troubles
from tests.test_review_flow import SUBMISSION

ACCOUNTS = {
    "warn_hours": [72, 24, 6],
    "lifecycle_chain": [],  # 注销 at once
    "accounts": [
        {"name": "示范发布", "platform": "微信公众号", "owners": ["zhaoli"]},
        {"name": "示范微博", "platform": "微博", "owners": ["wangxm"], "period_hours": 168},
        {"name": "示范头条", "platform": "今日头条", "owners": ["zhaoli"]},
        {"name": "示范网站栏目", "platform": "政府网站", "owners": ["chenfb"]},
        {"name": "旧账号", "platform": "抖音", "owners": ["chenfb"]},
    ],
}
# The rotation begins on Wednesday 12-02: until then nobody is 主班 (a gap the page must show).
DUTY = {
    "rotation": ["zhaoli", "wangxm"],
    "leader_rotation": ["liuzr"],
    "rotation_start": "2026-12-02",
    "handover_time": "08:30",
    "gap_horizon_days": 3,  # the roster is written 3 days ahead; the page plans the rest
}
# T0 is Monday 11-23 09:00 in Shanghai; the page is read on Monday 11-30 at 10:00.
READ_AT = T0 + timedelta(days=7, hours=1)


@pytest.fixture
async def unit(database_url: str) -> AsyncIterator[Stack]:
    settings = stack_settings(database_url, {"freshness": ACCOUNTS, "duty": DUTY})
    async with running_stack(settings, FrozenClock(T0)) as stack:
        yield stack


async def to(stack: Stack, moment: datetime) -> None:
    """Move the clock to `moment` (no sweep: only what people do happens)."""
    stack.clock.advance(seconds=(moment - stack.clock.now()).total_seconds())  # type: ignore[attr-defined]


async def submit(stack: Stack, who: str, title: str) -> None:
    await say(stack, who, f"/submit {title}\n{META}各有关单位：请按要求做好相关工作。")


async def a_week_of_work(stack: Stack) -> None:
    """What the unit did from Monday 11-23 to Monday 11-30 10:00."""
    # Monday 09:00: draft 1 passes 一审 and waits for 二审 all week.
    await say(stack, "wangxm", SUBMISSION)
    await say(stack, "wangxm", "/approve 1")
    # Draft 2 passes 三审, goes out on 示范发布, then a 错别字 sends it back (纠错).
    await submit(stack, "wangxm", "关于做好冬季安全生产工作的通知")
    for reviewer in ("wangxm", "zhangkz", "liuzr"):
        await say(stack, reviewer, "/approve 2")
    await say(stack, "chenfb", "/published 2 示范发布")
    assert "已登记错情1号" in await say(stack, "chenfb", "/correct 2 错别字 第二段“防讯”应为“防汛”")
    # Draft 3 passes 三审 and is retracted (撤稿).
    await submit(stack, "wangxm", "关于调整办公时间的通知")
    for reviewer in ("wangxm", "zhangkz", "liuzr"):
        await say(stack, reviewer, "/approve 3")
    assert "错情2号" in await say(stack, "liuzr", "/retract 3 政治性 涉及台湾的表述不规范")

    # Tuesday 09:00: an update outside review, a pause, a closed account, an incident.
    await to(stack, T0 + timedelta(days=1))
    await say(stack, "zhaoli", "/posted 示范头条 转载上级稿件")
    await say(stack, "chenfb", "/accounts pause 示范网站栏目 2026-12-10 网站改版")
    await say(stack, "chenfb", "/accounts close 旧账号 理由：账号合并")
    await say(stack, "zhaoli", "/alert 舆情 网上出现关于防汛演练的不实信息")
    await to(stack, T0 + timedelta(days=1, minutes=12))
    await tap(stack, "chenfb", "收到")  # nobody is on duty yet: the admins are paged
    await to(stack, T0 + timedelta(days=1, minutes=40))
    await tap(stack, "chenfb", "已处置")

    # Friday 14:00: an incident acknowledged after 45 minutes, still being handled.
    await to(stack, T0 + timedelta(days=4, hours=5))
    await say(stack, "wangxm", "/alert 网络安全 门户网站疑似被篡改")
    await to(stack, T0 + timedelta(days=4, hours=5, minutes=45))
    await tap(stack, "chenfb", "收到")

    # Saturday 09:00: draft 4 waits at 一审 over the weekend (two days, ten working hours on Monday).
    await to(stack, T0 + timedelta(days=5))
    await submit(stack, "zhaoli", "周末防汛值守安排")
    # Monday 05:00: draft 5 reaches 三审.
    await to(stack, T0 + timedelta(days=6, hours=20))
    await submit(stack, "wangxm", "关于元旦假期安排的通知")
    await say(stack, "wangxm", "/approve 5")
    await say(stack, "sunkz", "/approve 5")
    # Monday 09:30: an incident nobody has acknowledged yet.
    await to(stack, T0 + timedelta(days=7, minutes=30))
    await say(stack, "zhaoli", "/alert 其他 政务大厅网络中断")
    await to(stack, READ_AT)
    await at(stack, sweeps=1)  # the scheduler writes the roster its 3 days ahead


def section(page: Page, name: str) -> str:
    match = re.search(rf'<section class="card" id="{name}">(.*?)</section>', page.text, re.S)
    assert match, f"no section {name}"
    return readable(match.group(1))


def lines_of(page: Page, element_id: str) -> list[str]:
    match = re.search(rf'<(ul|ol|table)[^>]* id="{element_id}"[^>]*>(.*?)</\1>', page.text, re.S)
    assert match, f"no list {element_id}"
    return readable(match.group(2)).splitlines()


def calendar_days(page: Page) -> dict[str, str]:
    """The duty calendar: each day's label → what is shown for it, on one line."""
    days = re.findall(r'<li class="day[^"]*">(.*?)</li>', page.text, re.S)
    found = {}
    for day in days:
        text = " ".join(readable(re.sub(r"</span>", "</span>\n", day)).splitlines())
        found[text[:8]] = re.sub(r"\s+", " ", text)
    return found


async def test_the_dashboard_shows_what_the_unit_did(unit: Stack) -> None:
    stack = unit
    await a_week_of_work(stack)
    async with Phone(stack, "liuzr") as leader:
        home = await leader.get("/app/")
        assert 'href="/app/dashboard"' in home.text, "a leader's home page links to it"
        page = await leader.get("/app/dashboard")
    assert page.status == 200
    assert "截至 2026-11-30 10:00" in page.plain and "2026年第四季度（截至目前）" in page.plain

    # 稿件: by stage and age (since reaching the stage), overdue as the reminders count it.
    drafts = section(page, "drafts")
    assert "审核中 3 件，已退回待修改 1 件" in drafts
    assert lines_of(page, "stages") == [
        "环节 | 合计 | 不足1天 | 1至3天 | 3天以上",
        "一审 | 1 | 0 | 1 | 0",
        "二审 | 1 | 0 | 0 | 1",
        "三审 | 1 | 1 | 0 | 0",
    ]
    # Draft 1: 二审 since Monday 09:00, 121 working hours. Draft 4 has waited 49 hours, but only 10
    # of them on working days: not overdue.
    assert lines_of(page, "overdue") == [
        "1号《关于开展2025年防汛演练的通知》",
        "二审 · 已等待 121 小时（工作日）",
        "11-23 09:00 起，共 7 天 1 小时；待 张科长、孙科长 处理",
    ]
    assert 'href="/app/drafts/1/"' in page.text
    chart = re.search(r'<section class="card" id="drafts">.*?(<svg.*?</svg>)', page.text, re.S)
    assert chart and chart.group(1).count("<rect") == 3 + 3, "a swatch per age, a bar piece per draft"

    # 错情 of the quarter, by kind, each linked to its draft.
    assert lines_of(page, "error-kinds") == [
        "错别字 | 表述 | 政治性 | 泄密 | 链接 | 其他",
        "1 | 0 | 1 | 0 | 0 | 0",
    ]
    assert lines_of(page, "cases") == [
        "错情1号 · 错别字 · 纠错 · 2号《关于做好冬季安全生产工作的通知》",
        "第1版 · 11-23 09:00",
        "错情2号 · 政治性 · 撤稿 · 3号《关于调整办公时间的通知》",
        "第1版 · 11-23 09:00",
    ]
    assert 'href="/app/drafts/2/"' in page.text and 'href="/app/drafts/3/"' in page.text

    # 值班: nobody until the rotation begins on 12-02; the roster is written to 12-04, planned after.
    duty = section(page, "duty")
    assert "当前无人值班（主班）" in duty
    assert "排班缺口 1 段（无主班）" in duty
    assert lines_of(page, "gaps") == ["11-30 10:00 至 12-02 08:30（1 天 22 小时）"]
    days = calendar_days(page)
    assert list(days)[0] == "11-30 周一" and len(days) == 14
    assert days["11-30 周一"] == "11-30 周一 今天 缺主班 10:00–24:00"
    assert days["12-01 周二"] == "12-01 周二 缺主班 00:00–24:00"
    assert days["12-02 周三"] == "12-02 周三 08:30 主班 赵丽 · 带班领导 刘主任 缺主班 00:00–08:30"
    assert days["12-04 周五"] == "12-04 周五 08:30 主班 赵丽 · 带班领导 刘主任"
    assert days["12-05 周六"] == "12-05 周六 休 08:30 主班 王小明 · 带班领导 刘主任 （按轮值预排）"
    assert days["12-13 周日"] == "12-13 周日 休 08:30 主班 王小明 · 带班领导 刘主任 （按轮值预排）"

    # 账号: time left before each deadline (as /accounts says it), the overdue one in red.
    assert lines_of(page, "account-list") == [
        "示范微博（微博）：已超期 0 天 1 小时",
        "期限 11-30 09:00（无更新记录，自登记起算）",
        "示范发布（微信公众号）：剩余 6 天 23 小时",
        "期限 12-07 09:00",
        "示范头条（今日头条）：剩余 7 天 23 小时",
        "期限 12-08 09:00（最近一次更新未经本系统审核）",
    ]
    accounts = section(page, "accounts")
    assert "考核中 3 个，已超期 1 个" in accounts
    bars = re.findall(r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="12" class="(\w+)">', page.text)
    assert [css for _, _, css in bars] == ["over", "ok", "ok"]
    (_, over), (start, six_days), (_, seven_days) = [(float(x), float(w)) for x, w, _ in bars]
    assert float(bars[0][0]) + over == pytest.approx(start, abs=0.1), "overdue ends at the deadline line"
    assert six_days / seven_days == pytest.approx(167 / 191, rel=0.01), "bars to one scale"
    assert lines_of(page, "paused") == ["示范网站栏目（政府网站）：暂停考核至 12-10（网站改版）"]
    assert lines_of(page, "closed") == ["旧账号（抖音）注销于 11-24 09:00"]

    # 突发事件: those not yet 已处置 with their age, and the quarter's times to 收到.
    assert lines_of(page, "unresolved") == [
        "事件2号 · 网络安全 · 已收到，处置中：门户网站疑似被篡改",
        "11-27 14:00 报告，已 2 天 20 小时",
        "事件3号 · 其他 · 待收到：政务大厅网络中断",
        "11-30 09:30 报告，已 30 分钟",
    ]
    assert "共 3 件，已确认 2 件；确认用时中位数 28.5 分钟，最长 45 分钟" in section(page, "incidents")
    assert lines_of(page, "acks") == [
        "事件 | 种类 | 报告 | 确认用时",
        "1号 | 舆情 | 11-24 09:00 | 12 分钟 · 陈发布",
        "2号 | 网络安全 | 11-27 14:00 | 45 分钟 · 陈发布",
        "3号 | 其他 | 11-30 09:30 | 未确认",
    ]


async def test_another_period_and_a_wrong_one(unit: Stack) -> None:
    stack = unit
    await submit(stack, "wangxm", "关于调整办公时间的通知")
    for reviewer in ("wangxm", "zhangkz", "liuzr"):
        await say(stack, reviewer, "/approve 1")
    await say(stack, "chenfb", "/retract 1 链接 链接失效")
    async with Phone(stack, "chenfb") as admin:
        november = await admin.get("/app/dashboard?period=2026-11")
        october = await admin.get("/app/dashboard?period=2026-10")
        wrong = await admin.get("/app/dashboard?period=下个月")
    assert "错情 · 2026年11月" in november.plain and "共 1 条" in section(november, "errors")
    assert "错情 · 2026年10月" in october.plain and "共 0 条" in section(october, "errors")
    assert "本期间没有登记错情" in october.plain
    assert wrong.status == 200 and "时间“下个月”应写成" in wrong.plain and "以下为本季度" in wrong.plain
    assert "错情 · 2026年第四季度" in wrong.plain


async def test_only_leaders_principals_and_admins_see_it(unit: Stack) -> None:
    stack = unit
    async with Phone(stack, "wangxm") as collector:
        refused = await collector.get("/app/dashboard")
        home = await collector.get("/app/")
    assert refused.status == 403
    assert "概况页面仅供单位领导、主要领导、管理员查看" in refused.plain
    assert "排班" not in refused.plain and "错情" not in refused.plain
    assert "/app/dashboard" not in home.text, "no link on the home page of whoever may not open it"
    async with Phone(stack, "zhangkz") as reviewer:
        assert (await reviewer.get("/app/dashboard")).status == 403
    async with Phone(stack, "chenfb") as admin:
        assert (await admin.get("/app/dashboard")).status == 200
    async with Phone(stack, "zhangkz") as nobody:
        response = await nobody.get_raw("/app/dashboard")
    assert response.status == 302, "no session: to WeCom sign-in first"


async def test_the_dashboard_fits_a_phone_screen(unit: Stack, phone: OpenPhone, tmp_path: Path) -> None:
    stack = unit
    await a_week_of_work(stack)
    page = await phone_of(phone, stack, "liuzr")
    problems = troubles(page)
    response = await page.goto(f"{stack.bot_url}/app/dashboard")
    assert response is not None and response.status == 200
    shot = tmp_path / "dashboard-phone.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")  # noqa: T201 - shown with -s, to look at the page
    widths = await page.evaluate(
        "() => ({page: document.scrollingElement.scrollWidth, screen: window.innerWidth,"
        " charts: [...document.querySelectorAll('svg.chart')].map(s => s.getBoundingClientRect().width),"
        " main: document.querySelector('main').clientWidth})"
    )
    assert widths["page"] <= widths["screen"] == 390, f"wider than the phone: {widths}"
    assert len(widths["charts"]) == 2, "the drafts' chart and the accounts' chart"
    assert all(0 < w <= widths["main"] for w in widths["charts"]), widths
    # Drawn, and coloured by the stylesheet under the security policy (no inline styles).
    overdue = page.locator("#accounts svg rect.over")
    await overdue.wait_for()
    assert await overdue.evaluate("r => getComputedStyle(r).fill") == "rgb(207, 34, 46)"
    box = await overdue.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    assert await page.locator("#accounts svg text", has_text="已超期 0 天 1 小时").count() == 1
    await page.get_by_role("link", name="1号《关于开展2025年防汛演练的通知》").tap()
    await page.wait_for_url(f"{stack.bot_url}/app/drafts/1/")
    assert problems == []
