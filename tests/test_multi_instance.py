"""Two bot instances on one PostgreSQL database: every scheduled message goes out exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

from aiohttp import web

from bot.app import create_app
from bot.cli.stack import running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.keys import SENDER, SWEEPER
from tests.flow import say, tap
from tests.test_review_flow import SUBMISSION

START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # Monday 08:00 Asia/Shanghai


async def test_two_instances_send_each_occasion_once(postgres_url: str) -> None:
    settings = stack_settings(
        postgres_url,
        {
            "duty": {
                "rotation": ["zhaoli", "wangxm"],
                "leader_rotation": ["liuzr"],
                "rotation_start": "2026-11-23",
                "webhook_key": "group",
            },
            "freshness": {"accounts": [{"name": "示范发布", "platform": "微信公众号", "owners": ["zhaoli"]}]},
            "reminders": {"workdays_only": False},
        },
    )
    clock = FrozenClock(START)
    async with running_stack(settings, clock) as stack:
        stack.sim.add_robot("group")
        second = create_app(stack.settings, clock=clock, run_sender=False)
        runner = web.AppRunner(second)
        await runner.setup()  # runs the second instance's start-up on the same database
        try:
            apps = (stack.app, second)
            await say(
                stack, "zhaoli", "/posted 示范发布 2026-11-09 20:00 转载上级稿件"
            )  # 12.5 h to the deadline
            await say(stack, "wangxm", SUBMISSION)
            await tap(stack, "wangxm", "同意")

            async def both_sweep_and_send() -> None:
                for _ in range(3):
                    await asyncio.gather(*(app[SWEEPER].run_once() for app in apps))
                await asyncio.gather(*(app[SENDER].drain() for app in apps))

            for hours in (0.6, 2, 8, 14, 20, 24, 24.5, 30):
                clock.set(datetime.fromtimestamp(START.timestamp() + hours * 3600, UTC))
                await both_sweep_and_send()
        finally:
            await runner.cleanup()

        received = Counter(
            (user, d.payload.get("text", {}).get("content", "").split("】")[0] + "】")
            for user in ("zhaoli", "wangxm", "zhangkz", "sunkz", "liuzr", "chenfb")
            for d in stack.sim.inbox(user)
            if d.msgtype == "text"
        )
        assert received[("zhaoli", "【值班提醒】")] == 1
        assert received[("wangxm", "【值班提醒】")] == 1
        assert received[("zhaoli", "【交接班提醒】")] == 1
        assert received[("zhaoli", "【更新提醒】")] == 2  # 72h+24h caught up as one, then 6h
        assert received[("zhaoli", "【超期告警】")] == 1
        assert received[("chenfb", "【超期告警】")] == 1
        assert received[("zhangkz", "【催办】")] == 1
        assert len(stack.sim.robots["group"]) == 2, "one 今日值班 per shift"
        inspections = [
            d
            for d in stack.sim.inbox("zhaoli")
            if d.msgtype == "template_card" and "巡检" in d.payload["template_card"]["main_title"]["title"]
        ]
        assert len(inspections) == 1
        assert not stack.sim.dropped


async def test_two_instances_send_each_after_publishing_reminder_once(postgres_url: str) -> None:
    """发布后复核 overdue and its daily reminders, 整改 overdue, 读网 overdue: with two instances
    sweeping together, nobody receives any of them twice."""
    settings = stack_settings(
        postgres_url,
        {
            "duty": {
                "rotation": ["zhaoli", "wangxm"],
                "leader_rotation": ["liuzr"],
                "rotation_start": "2026-11-23",
                "webhook_key": "group",
            },
            "reading": {"people": ["sunkz"], "sections": ["政府网站首页"], "every": "daily"},
            "freshness": {"accounts": [{"name": "示范发布", "platform": "微信公众号", "owners": ["zhaoli"]}]},
        },
    )
    clock = FrozenClock(START)
    async with running_stack(settings, clock) as stack:
        stack.sim.add_robot("group")
        second = create_app(stack.settings, clock=clock, run_sender=False)
        runner = web.AppRunner(second)
        await runner.setup()
        try:
            apps = (stack.app, second)
            await say(stack, "wangxm", SUBMISSION)
            for reviewer in ("wangxm", "zhangkz", "liuzr"):
                await tap(stack, reviewer, "同意")
            await say(stack, "chenfb", "/published 1 示范发布")  # re-check due by 10:00

            async def both_sweep_and_send() -> None:
                for _ in range(3):
                    await asyncio.gather(*(app[SWEEPER].run_once() for app in apps))
                await asyncio.gather(*(app[SENDER].drain() for app in apps))

            for hours in (1.6, 2.1, 16.1, 26, 40.1, 50, 64.1):
                clock.set(datetime.fromtimestamp(START.timestamp() + hours * 3600, UTC))
                await both_sweep_and_send()
                if hours == 2.1:  # 赵丽 on duty gives 王小明 a problem to fix by today
                    await say(stack, "zhaoli", "/inspect 问题 首页链接失效 wangxm 2026-11-23")
        finally:
            await runner.cleanup()

    watched = ("【复核超时】", "【复核提醒】", "【整改超期】", "【读网超期】")
    received = Counter(
        (user, d.payload["text"]["content"])
        for user in ("zhaoli", "wangxm", "zhangkz", "sunkz", "liuzr", "chenfb")
        for d in stack.sim.inbox(user)
        if d.msgtype == "text" and d.payload["text"]["content"].startswith(watched)
    )
    assert received and max(received.values()) == 1, [k for k, n in received.items() if n > 1]
    kinds = Counter((user, text.split("】")[0] + "】") for user, text in received)
    assert {kind for _, kind in kinds} == set(watched)
    assert kinds[("wangxm", "【整改超期】")] == 3, "a day overdue each day: 11-24, 11-25, 11-26"
    assert kinds[("chenfb", "【整改超期】")] == 1, "the admins once"
    assert sum(n for (_, kind), n in kinds.items() if kind == "【复核提醒】") >= 2
