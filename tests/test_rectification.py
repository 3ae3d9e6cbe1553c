"""巡检 findings and 整改 (问题交办、限期整改: 湛江 第十二条、第十六条(一); 钦州 第二十八条): the person
on duty writes a problem down, gives it to someone with a deadline, who is reminded daily once it
is overdue (the admins told once) until /fix; wrong people and wrong input change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.cli.stack import Stack, running_stack
from bot.core.clock import FrozenClock
from storage.duty_models import InspectionFinding
from tests.flow import active_card, at, count, last_text, say, tap
from tests.test_duty import START, duty_settings


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    async with running_stack(duty_settings(database_url), FrozenClock(START)) as running:
        await at(running, hours=2, minutes=1)  # 10:01: 赵丽 on duty has today's 巡检 card
        yield running


async def findings(stack: Stack) -> list[InspectionFinding]:
    async with stack.db() as session:
        return list((await session.exec(select(InspectionFinding))).all())


async def test_a_problem_found_in_the_inspection_is_given_out_and_followed_until_fixed(stack: Stack) -> None:
    card = active_card(stack, "zhaoli").payload["template_card"]
    assert [b["text"] for b in card["button_list"]] == ["已完成", "发现问题"]
    await tap(stack, "zhaoli", "发现问题")
    assert "请写明发现的问题：/inspect 问题 说明" in last_text(stack, "zhaoli")
    refusals = [
        ("sunkz", "/inspect 问题 首页链接失效", "只有当前值班人员和管理员"),
        ("zhaoli", "/inspect 问题", "请写明发现的问题"),
        ("zhaoli", "/inspect 看看", "用法：/inspect"),
        ("zhaoli", "/inspect 问题 首页链接失效 wangxm 2026-11-22", "不早于今天的整改期限"),
        ("zhaoli", "/inspect 问题 首页链接失效 wangxm 2026-02-30", "不存在"),
    ]
    for user, command, answer in refusals:
        await say(stack, user, command)
        assert answer in last_text(stack, user), command
    assert await findings(stack) == []

    await say(stack, "zhaoli", "/inspect 问题 留言板有3条留言超过5个工作日未回复")
    assert last_text(stack, "zhaoli") == "已记录巡检问题1号：留言板有3条留言超过5个工作日未回复。"
    await say(stack, "zhaoli", "/inspect 问题 政务公开栏目链接失效 wangxm 2026-11-24")
    assert "已记录巡检问题2号并交王小明整改，期限 2026-11-24" in last_text(stack, "zhaoli")
    assert last_text(stack, "wangxm") == (
        "【整改】赵丽在 11-23 日常巡检中发现：政务公开栏目链接失效。请于 2026-11-24 前整改，完成后发送 /fix 2 整改情况。"
    )
    await say(stack, "sunkz", "/inspect")
    assert (
        last_text(stack, "sunkz") == "【整改】未完成 1 项：\n2. 政务公开栏目链接失效 · 王小明 · 2026-11-24 前"
    )

    await at(stack, hours=37, minutes=59)  # 2026-11-25 00:00 local: the deadline passes
    assert count(stack, "wangxm", "【整改超期】") == 1 and count(stack, "chenfb", "【整改超期】") == 1
    await at(stack, hours=12)
    assert count(stack, "wangxm", "【整改超期】") == 1, "once a day"
    await at(stack, hours=12)
    assert count(stack, "wangxm", "【整改超期】") == 2 and count(stack, "chenfb", "【整改超期】") == 1
    await say(stack, "sunkz", "/fix 2 已修复")
    assert "由王小明负责，本次操作未生效" in last_text(stack, "sunkz")
    await say(stack, "wangxm", "/fix 2")
    assert "请写明整改情况" in last_text(stack, "wangxm")
    await say(stack, "wangxm", "/fix 2 已更正链接并全站排查")
    assert last_text(stack, "wangxm") == "已记录：2号整改完成（已超期）。"
    assert (
        last_text(stack, "zhaoli")
        == "巡检问题2号（政务公开栏目链接失效）已由王小明整改：已更正链接并全站排查。"
    )
    await say(stack, "wangxm", "/fix 2 再来")
    assert "已由王小明完成" in last_text(stack, "wangxm")
    await at(stack, days=2)
    assert count(stack, "wangxm", "【整改超期】") == 2, "fixed: no more reminders"
    await say(stack, "wangxm", "/fix 1 已回复")
    assert "没有1号整改任务" in last_text(stack, "wangxm")
    first, second = await findings(stack)
    assert (first.assignee, first.due_at, second.fixed_by, second.fix_note) == (
        "",
        None,
        "wangxm",
        "已更正链接并全站排查",
    )
