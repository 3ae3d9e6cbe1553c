"""催办 on simulated time: reminders, escalation, working days, quiet hours, the hard limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from tests.flow import at, count, decisions, drafts, last_text, say, tap
from tests.test_review_flow import SUBMISSION

MONDAY_10 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
FRIDAY_10 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def reminder_stack(url: str, start: datetime, **rules: Any) -> Any:
    settings = stack_settings(url, {"reminders": {"workdays_only": False, **rules}})
    return running_stack(settings, FrozenClock(start))


@pytest.fixture
async def stage_two(database_url: str) -> AsyncIterator[Stack]:
    async with reminder_stack(database_url, MONDAY_10) as stack:
        await say(stack, "wangxm", SUBMISSION)
        await tap(stack, "wangxm", "同意")
        yield stack


async def test_reminder_then_escalation_each_once(stage_two: Stack) -> None:
    stack = stage_two
    await at(stack, hours=23)
    assert count(stack, "zhangkz", "【催办】") == 0
    await at(stack, hours=1)
    assert count(stack, "zhangkz", "【催办】") == 1 and count(stack, "sunkz", "【催办】") == 1
    await stack.restart_bot()
    await at(stack, hours=2)
    assert count(stack, "zhangkz", "【催办】") == 1
    await at(stack, hours=22)  # 48 h: escalation to the leader, and the reviewers are told
    assert count(stack, "liuzr", "【催办上报】") == 1 and "张科长、孙科长" in last_text(stack, "liuzr")
    assert count(stack, "zhangkz", "【催办】") == 2
    await at(stack, hours=23)
    assert count(stack, "liuzr", "【催办上报】") == 1
    await at(stack, hours=1)
    assert count(stack, "liuzr", "【催办上报】") == 2, "repeated every 24 h"
    await say(stack, "wangxm", "/draft 1")
    assert "系统 系统催办" in last_text(stack, "wangxm") and "超时上报" in last_text(stack, "wangxm")


async def test_a_decision_stops_the_reminders(stage_two: Stack) -> None:
    stack = stage_two
    await at(stack, hours=24)
    await tap(stack, "zhangkz", "同意")
    await at(stack, hours=20)
    assert count(stack, "zhangkz", "【催办】") == 1
    await at(stack, hours=4)  # 三审 has now waited 24 h
    assert count(stack, "liuzr", "【催办】") == 1


async def test_quiet_hours_defer_to_morning(database_url: str) -> None:
    async with reminder_stack(database_url, MONDAY_10, remind_after_hours=13) as stack:
        await say(stack, "wangxm", SUBMISSION)
        await tap(stack, "wangxm", "同意")
        await at(stack, hours=13)  # 23:00: quiet
        assert count(stack, "zhangkz", "【催办】") == 0
        await at(stack, hours=8)  # 07:00: still quiet
        assert count(stack, "zhangkz", "【催办】") == 0
        await at(stack, minutes=31)  # 07:31
        assert count(stack, "zhangkz", "【催办】") == 1


async def test_working_days_only_skips_the_weekend(database_url: str) -> None:
    async with reminder_stack(database_url, FRIDAY_10, workdays_only=True) as stack:
        await say(stack, "wangxm", SUBMISSION)
        await tap(stack, "wangxm", "同意")
        await at(stack, hours=24)  # Saturday 10:00: only 14 working hours have passed
        await at(stack, hours=24)  # Sunday
        assert count(stack, "zhangkz", "【催办】") == 0
        await at(stack, hours=24)  # Monday 10:00: 14 h (Fri) + 10 h (Mon) = 24 working hours
        assert count(stack, "zhangkz", "【催办】") == 1
        assert "按工作日计" in last_text(stack, "zhangkz")


async def test_hard_limit_returns_to_submitter_never_approves(database_url: str) -> None:
    rules = {"hard_limit_hours": 30, "hard_limit_outcome": "return_to_submitter"}
    async with reminder_stack(database_url, MONDAY_10, **rules) as stack:
        await say(stack, "wangxm", SUBMISSION)
        await tap(stack, "wangxm", "同意")
        await at(stack, hours=31)
        assert "已按规定退回" in last_text(stack, "wangxm")
        (draft,) = await drafts(stack)
        assert draft.status == "rejected"
        assert [(d.stage, d.decision) for d in await decisions(stack)] == [(1, "approve")]
        await say(stack, "zhangkz", "/approve 1")
        assert "不在审核中" in last_text(stack, "zhangkz")


async def test_hard_limit_notify_admins(database_url: str) -> None:
    async with reminder_stack(database_url, MONDAY_10, hard_limit_hours=30) as stack:
        await say(stack, "wangxm", SUBMISSION)
        await tap(stack, "wangxm", "同意")
        await at(stack, hours=31)
        await at(stack, hours=31)
        assert count(stack, "chenfb", "【超时未审】") == 1
        (draft,) = await drafts(stack)
        assert (draft.status, draft.stage) == ("in_review", 2)
