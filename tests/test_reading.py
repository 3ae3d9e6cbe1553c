"""全员读网 (钦州 第十四条; 三审三校 五(二)3): the staff take turns reading the site's sections, one
turn a week, each confirmed 无误 or with what was found (the admins told); a turn left open past
its week is reported once; wrong people and wrong input change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.core.config import ConfigError
from storage.duty_models import ReadingTask
from tests.flow import at, count, last_text, say, tap
from tests.test_duty import DUTY, START

READING = {
    "people": ["wangxm", "zhaoli", "sunkz"],
    "sections": ["政府网站首页", "政务公开栏目"],
    "time": "09:30",
}


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    settings = stack_settings(database_url, {"duty": DUTY, "reading": READING})
    async with running_stack(settings, FrozenClock(START)) as running:  # Monday 08:00
        yield running


def reading_cards(stack: Stack, user: str) -> list[dict[str, object]]:
    return [
        d.payload["template_card"]
        for d in stack.sim.inbox(user)
        if d.msgtype == "template_card"
        and d.payload["template_card"]["main_title"]["title"].startswith("【读网】")
    ]


async def test_turns_rotate_weekly_and_each_is_answered_or_reported(stack: Stack) -> None:
    await at(stack, hours=1, minutes=29)
    assert not any(reading_cards(stack, u) for u in READING["people"])
    await at(stack, minutes=1)  # 09:30: this week's turn (the 151st week since 2024-01-01)
    (card,) = reading_cards(stack, "zhaoli")
    assert (card["main_title"]["title"], card["main_title"]["desc"]) == (
        "【读网】政务公开栏目",
        "11-29 前完成",
    )
    assert [b["text"] for b in card["button_list"]] == ["已读无误", "发现问题"]
    await at(stack, hours=3)
    assert len(reading_cards(stack, "zhaoli")) == 1, "one turn a week"

    await say(stack, "wangxm", "/read 1 无误")
    assert "1号读网由赵丽负责，本次操作未生效" in last_text(stack, "wangxm")
    await say(stack, "zhaoli", "/read 1 问题")
    assert "请写明发现的问题" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "/read 1 看过了")
    assert "用法：/read" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "/read 1 问题 第3条链接失效")
    assert last_text(stack, "zhaoli") == "已记录：1号读网发现问题（第3条链接失效），已告知管理员。"
    assert last_text(stack, "chenfb").startswith(
        "【读网·发现问题】赵丽阅读“政务公开栏目”发现：第3条链接失效。"
    )
    await say(stack, "zhaoli", "/read 1 无误")
    assert "1号读网已完成（发现问题），本次操作未生效" in last_text(stack, "zhaoli")

    await at(stack, days=7)  # next Monday: the next reader and section
    (card,) = reading_cards(stack, "sunkz")
    assert card["main_title"]["title"] == "【读网】政府网站首页"
    await tap(stack, "sunkz", "发现问题")
    assert "请写明发现的问题：/read 2 问题 说明" in last_text(stack, "sunkz")
    await at(stack, days=6, hours=14, minutes=30)  # past Sunday's end, not answered
    overdue = "【读网超期】2026-11-30 起的读网（政府网站首页）由孙科长负责，至今未登记结果。"
    assert last_text(stack, "sunkz").startswith(overdue) and count(stack, "chenfb", "【读网超期】") == 1
    await at(stack, hours=6)
    assert count(stack, "sunkz", "【读网超期】") == 1, "once"
    await tap(stack, "sunkz", "已读无误")
    assert last_text(stack, "sunkz") == "已记录：2号读网（政府网站首页）无误。"
    await say(stack, "sunkz", "/read 2 无误")
    assert last_text(stack, "sunkz") == "2号读网已完成（读网无误），本次操作未生效。"
    async with stack.db() as session:
        tasks = (await session.exec(select(ReadingTask).order_by(ReadingTask.id))).all()
    assert [(t.userid, t.section, t.outcome) for t in tasks[:2]] == [
        ("zhaoli", "政务公开栏目", "problem"),
        ("sunkz", "政府网站首页", "ok"),
    ]


async def test_an_unknown_reader_is_a_config_error(database_url: str) -> None:
    with pytest.raises(ConfigError, match="reading.people: nobody 不在 staff 中"):
        stack_settings(database_url, {"reading": {"people": ["nobody"]}})
