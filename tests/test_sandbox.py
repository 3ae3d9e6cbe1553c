"""The training sandbox: simulated phones in a real chromium, each tap an encrypted callback to the
real bot; time fast-forwarded on the simulated clock; never the real WeCom."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, Page
from sqlmodel import col, select

from bot.cli.sandbox import Sandbox, running_sandbox, serve_sandbox
from bot.cli.stack import stack_settings
from storage.models import Draft, DraftVersion, StageDecision

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = {
    "freshness": {
        "accounts": [
            {"name": "示范发布", "platform": "微信公众号", "unit": "市政府办公室", "owners": ["zhaoli"]}
        ]
    }
}
APPROVE = re.compile(r"^同意")  # 同意, or 同意（不涉密） at the 保密审查 stage — never 不同意


def phone(page: Page, userid: str):  # type: ignore[no-untyped-def]
    return page.locator(f'section.phone[data-user="{userid}"]')


async def tap_approve(page: Page, userid: str) -> None:
    card = phone(page, userid).locator(".card:not(.greyed)").last
    await card.locator("button", has_text=APPROVE).click()
    await page.locator("#note").wait_for()


async def decided(sandbox: Sandbox) -> list[tuple[int, str]]:
    async with sandbox.stack.db() as session:
        rows = (await session.exec(select(StageDecision).order_by(col(StageDecision.id)))).all()
    return [(r.stage, r.reviewer_userid) for r in rows]


async def test_three_people_take_a_draft_through_three_stages_by_clicking(
    browser: Browser, tmp_path: Path
) -> None:
    settings = stack_settings("sqlite+aiosqlite:///unused.db", ACCOUNTS)
    async with running_sandbox(settings, tmp_path) as (sandbox, url):
        page = await browser.new_page(viewport={"width": 1600, "height": 1000}, locale="zh-CN")
        await page.goto(url)
        assert "演练环境" in await page.locator("#banner").inner_text()
        await page.locator("#side").check()  # every phone side by side
        await phone(page, "chenfb").wait_for()

        await page.get_by_role("button", name="投稿样稿").click()
        await page.get_by_text("王小明已投稿样稿").wait_for()
        await phone(page, "wangxm").locator(".card").first.wait_for()
        assert await phone(page, "zhaoli").locator(".card:not(.greyed)").count() == 1  # both hold 一审

        await tap_approve(page, "wangxm")
        # the other holder's copy is greyed and cannot be tapped any more
        await phone(page, "zhaoli").locator(".card.greyed").first.wait_for()
        greyed = phone(page, "zhaoli").locator(".card.greyed button").first
        assert await greyed.is_disabled()
        await phone(page, "zhangkz").locator(".card:not(.greyed)").first.wait_for()
        # 阅读全文 on 张科长's phone opens the draft's page signed in as 张科长 (simulated 网页授权)
        async with page.context.expect_page() as opened:
            await phone(page, "zhangkz").locator(".card:not(.greyed)").last.get_by_text("阅读全文").click()
        draft_page = await opened.value
        await draft_page.wait_for_load_state()
        assert await draft_page.locator(".who").inner_text() == "张科长"
        assert "关于开展演练期间网站巡查的通知" in await draft_page.content()
        await draft_page.close()
        await tap_approve(page, "zhangkz")
        await phone(page, "liuzr").locator(".card:not(.greyed)").first.wait_for()
        async with page.context.expect_page() as opened:  # the next person's page: 刘主任 now
            await phone(page, "liuzr").locator(".card:not(.greyed)").last.get_by_text("阅读全文").click()
        draft_page = await opened.value
        await draft_page.wait_for_load_state()
        assert await draft_page.locator(".who").inner_text() == "刘主任"
        await draft_page.close()
        await tap_approve(page, "liuzr")
        await phone(page, "wangxm").get_by_text("已通过三审").first.wait_for()

        assert await decided(sandbox) == [(1, "wangxm"), (2, "zhangkz"), (3, "liuzr")]
        async with sandbox.stack.db() as session:
            (draft,) = (await session.exec(select(Draft))).all()
        assert draft.status == "approved"
        assert await phone(page, "sunkz").locator(".card.greyed").count() == 1  # 二审's other holder

        # 14×24 h: days go by until the account's owner is warned before the deadline
        await page.get_by_role("button", name="快进到账号更新提醒").click()
        await page.get_by_text("账号负责人收到更新提醒").wait_for()
        await phone(page, "zhaoli").get_by_text("【更新提醒】").first.wait_for()
        assert not await phone(page, "wangxm").get_by_text("【更新提醒】").count()


async def test_a_tap_on_a_card_one_does_not_hold_changes_nothing(tmp_path: Path) -> None:
    settings = stack_settings("sqlite+aiosqlite:///unused.db")
    async with running_sandbox(settings, tmp_path) as (sandbox, url), aiohttp.ClientSession() as http:
        await sandbox.submit_sample()
        (card,) = [d for d in sandbox.stack.sim.inbox("wangxm") if d.msgtype == "template_card"]
        task_id = card.payload["template_card"]["task_id"]
        key = card.payload["template_card"]["button_list"][0]["key"]
        async with http.post(
            url + "api/tap", json={"user": "liuzr", "task_id": task_id, "key": key}
        ) as answer:
            assert answer.status == 400
            assert (await answer.json())["error"] == "这张卡片已不能点击（已处理或已置灰）"
        async with http.post(url + "api/scenario", json={"name": "nonsense"}) as answer:
            assert answer.status == 400 and (await answer.json())["error"] == "没有这个场景"
        async with http.post(url + "api/scenario", json={"name": "deadline"}) as answer:
            assert answer.status == 400 and "没有需要提醒的账号" in (await answer.json())["error"]
        assert await decided(sandbox) == []


def test_the_sandbox_refuses_a_config_with_the_real_wecom_address(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", "-c", str(ROOT / "config.example.toml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.startswith(
        "配置错误 wecom.api_base: 演练环境不连接真实的企业微信"
    )
    assert "演练环境已启动" not in done.stdout


async def test_reset_starts_afresh_on_the_same_address(unused_tcp_port: int) -> None:
    settings = stack_settings("sqlite+aiosqlite:///unused.db")
    stop = asyncio.Event()
    running = asyncio.ensure_future(serve_sandbox(settings, unused_tcp_port, stop=stop))
    url = f"http://127.0.0.1:{unused_tcp_port}/"

    async def inbox(http: aiohttp.ClientSession) -> list[object]:
        async with http.get(url + "api/inbox", params={"user": "wangxm"}) as answer:
            return list(await answer.json())

    try:
        async with asyncio.timeout(60), aiohttp.ClientSession() as http:
            while True:  # until the sandbox listens
                try:
                    await inbox(http)
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            async with http.post(url + "api/scenario", json={"name": "submit"}) as answer:
                assert (await answer.json())["ok"]
            assert len(await inbox(http)) == 3  # 已收到投稿, the preview, the 一审 card
            async with http.post(url + "api/reset", json={}) as answer:
                assert (await answer.json())["note"] == "演练环境正在重置"
            while True:  # the old sandbox goes, a new one answers with an empty phone
                try:
                    if await inbox(http) == []:
                        break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)


async def test_the_word_sample_is_submitted_on_the_page_with_its_table_and_picture(tmp_path: Path) -> None:
    settings = stack_settings("sqlite+aiosqlite:///unused.db")
    async with running_sandbox(settings, tmp_path) as (sandbox, url), aiohttp.ClientSession() as http:
        async with http.post(url + "api/scenario", json={"name": "submit_word"}) as answer:
            assert (await answer.json())["note"] == "王小明已在投稿页面提交 Word 样稿"
        async with http.get(url + "api/inbox", params={"user": "zhaoli"}) as answer:
            (card,) = [m for m in await answer.json() if m["kind"] == "template_card"]
        assert card["active"] and card["card"]["main_title"]["title"].startswith("【一审】")
        async with sandbox.stack.db() as session:
            (draft,) = (await session.exec(select(Draft))).all()
            version = (await session.exec(select(DraftVersion))).one()
        assert draft.title == "关于做好2026年元旦春节期间安全生产工作的通知"
        assert "<table" in version.body_html and "<img" in version.body_html


async def test_fast_forward_to_the_handover_lands_just_after_the_next_one(tmp_path: Path) -> None:
    settings = stack_settings("sqlite+aiosqlite:///unused.db")
    async with running_sandbox(settings, tmp_path) as (sandbox, _):
        started = sandbox.clock.now()  # a minute after today's 08:30 handover
        assert (
            await sandbox.next_handover()
            == f"时间快进到交班 {(started.astimezone(settings.tz) + timedelta(days=1) - timedelta(minutes=1)):%m-%d %H:%M}"
        )
        assert sandbox.clock.now() == started + timedelta(days=1)
