"""The 24-hour duty watch on simulated time: pings, swaps, inspections, incidents, gaps, holidays."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bot.cli.stack import DEMO_STAFF, Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.core.config import Settings
from storage.duty_repo import rotation_for
from tests.flow import (
    active_card,
    at,
    cards,
    count,
    current_card,
    forged_tap,
    last_text,
    say,
    tap,
)

DUTY = {
    "rotation": ["zhaoli", "wangxm"],
    "leader_rotation": ["liuzr"],
    "rotation_start": "2026-11-23",
    "handover_time": "08:30",
    "inspection_time": "10:00",
    "inspection_deadline_minutes": 120,
    "inspection_reminder_minutes": 30,
    "incident_repeat_minutes": 5,
    "incident_escalate_minutes": 15,
    "gap_check_time": "09:00",
    "gap_horizon_days": 3,
    "webhook_key": "duty-group-key",
}
# Monday 2026-11-23 08:00 Asia/Shanghai: half an hour before the first handover.
START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def duty_settings(url: str, **changes: Any) -> Settings:
    return stack_settings(url, {"duty": {**DUTY, **changes}})


@pytest.fixture
async def duty_stack(database_url: str) -> AsyncIterator[Stack]:
    async with running_stack(duty_settings(database_url), FrozenClock(START)) as stack:
        stack.sim.add_robot("duty-group-key")
        yield stack


async def test_shift_ping_once_per_shift_across_sweeps_and_restarts(duty_stack: Stack) -> None:
    stack = duty_stack
    await at(stack)
    assert count(stack, "zhaoli", "【值班提醒】") == 0, "nobody's shift has started before 08:30"
    await at(stack, minutes=31)
    assert count(stack, "zhaoli", "【值班提醒】") == 1
    assert "主班" in last_text(stack, "zhaoli") and "刘主任" in last_text(stack, "zhaoli")
    assert count(stack, "liuzr", "【值班提醒】") == 1  # the 带班领导 too
    await stack.restart_bot()
    await at(stack, minutes=10)
    assert count(stack, "zhaoli", "【值班提醒】") == 1
    (group_message,) = stack.sim.robots["duty-group-key"]
    assert "今日值班" in group_message["text"]["content"]
    assert set(group_message["text"]["mentioned_list"]) == {"zhaoli", "liuzr"}
    # Handover reminder an hour before the end, then the next person's ping.
    await at(stack, hours=23)
    assert count(stack, "zhaoli", "【交接班提醒】") == 1 and "接班人：王小明" in last_text(stack, "zhaoli")
    await at(stack, hours=1)
    assert count(stack, "wangxm", "【值班提醒】") == 1
    assert len(stack.sim.robots["duty-group-key"]) == 2


async def test_catch_up_after_downtime_sends_only_current_occasions(duty_stack: Stack) -> None:
    stack = duty_stack
    await at(stack, minutes=31)
    stack.clock.advance(days=3)  # type: ignore[attr-defined]
    await at(stack)
    # Shifts of Tuesday (wangxm) and Wednesday (zhaoli) were missed: only Thursday's is pinged.
    assert count(stack, "zhaoli", "【值班提醒】") == 1
    assert count(stack, "wangxm", "【值班提醒】") == 1
    assert count(stack, "chenfb", "【排班缺口】") == 0


async def test_swap_permissions_and_effect(duty_stack: Stack) -> None:
    stack = duty_stack
    await at(stack, minutes=31)
    await say(stack, "liuzr", "/duty swap 2026-11-24 sunkz")  # a third person cannot move a shift
    assert "只有管理员、该班次的值班人或接班人本人" in last_text(stack, "liuzr")
    await say(stack, "wangxm", "/duty swap 2026-11-24")
    assert "用法：/duty" in last_text(stack, "wangxm")
    await say(stack, "wangxm", "/duty swap 24号 zhaoli")
    assert "应写成 YYYY-MM-DD" in last_text(stack, "wangxm")
    await say(stack, "wangxm", "/duty swap 2026-11-24 zhaoli")  # wangxm gives his shift away
    assert "已调班" in last_text(stack, "wangxm")
    assert "【调班】" in last_text(stack, "zhaoli")
    await say(stack, "chenfb", "/duty swap 2026-11-25 sunkz")  # an admin may assign anyone
    await say(stack, "zhaoli", "值班")
    roster = last_text(stack, "zhaoli")
    assert "11-24" in roster and "主班 赵丽" in roster and "主班 孙科长" in roster
    await at(stack, hours=24)
    assert count(stack, "zhaoli", "【值班提醒】") == 2 and count(stack, "wangxm", "【值班提醒】") == 0


async def test_taking_over_a_shift_needs_the_holders_consent(duty_stack: Stack) -> None:
    stack = duty_stack
    await at(stack, minutes=31)
    # 11-26 is wangxm's shift; sunkz asks to stand it instead.
    await say(stack, "sunkz", "/duty swap 2026-11-26 sunkz")
    assert "已向王小明发出调班申请" in last_text(stack, "sunkz")
    request = active_card(stack, "wangxm").payload["template_card"]
    assert request["main_title"]["title"] == "【调班申请】" and "孙科长" in request["sub_title_text"]
    await say(stack, "wangxm", "值班")
    assert "11-26 周四 08:30：主班 王小明" in last_text(stack, "wangxm")
    # Only the holder may answer; a forged click by the requester changes nothing.
    await forged_tap(stack, "sunkz", request, "同意")
    assert "只有该班次的值班人可以答复" in last_text(stack, "sunkz")
    await tap(stack, "wangxm", "不同意")
    assert "未同意您接替" in last_text(stack, "sunkz")
    await say(stack, "sunkz", "值班")
    assert "主班 王小明" in last_text(stack, "sunkz").split("11-26")[1].splitlines()[0]
    # Asked again, and agreed: the shift is sunkz's, and the ping goes to him.
    await say(stack, "sunkz", "/duty swap 2026-11-26 sunkz")
    await tap(stack, "wangxm", "同意")
    assert "已同意调班" in last_text(stack, "wangxm") and "【调班】" in last_text(stack, "sunkz")
    await say(stack, "sunkz", "值班")
    assert "11-26 周四 08:30：主班 孙科长" in last_text(stack, "sunkz")
    for _ in range(3):
        await at(stack, days=1)
    assert count(stack, "sunkz", "【值班提醒】") == 1 and count(stack, "wangxm", "【值班提醒】") == 1
    # A request overtaken by an admin's reassignment is greyed, and a late answer changes nothing.
    await say(stack, "sunkz", "/duty swap 2026-11-28 sunkz")
    stale = active_card(stack, "wangxm").payload["template_card"]
    await say(stack, "chenfb", "/duty swap 2026-11-28 zhaoli")
    assert stack.sim.card(stale["task_id"]).greyed == {"wangxm": "已另行调班"}
    await forged_tap(stack, "wangxm", stale, "同意")
    assert "现由赵丽值班，调班申请已失效" in last_text(stack, "wangxm")
    await say(stack, "sunkz", "值班")
    assert "11-28 周六 08:30：主班 赵丽" in last_text(stack, "sunkz")


async def test_inspection_card_reminder_and_escalation(duty_stack: Stack) -> None:
    stack = duty_stack
    await at(stack, hours=2)  # 10:00
    card = active_card(stack, "zhaoli").payload["template_card"]
    assert card["main_title"]["title"].startswith("【日常巡检】")
    await at(stack, minutes=95)  # 11:35: 25 minutes before the deadline
    assert count(stack, "zhaoli", "【巡检提醒】") == 1
    await at(stack, minutes=30)  # 12:05: late
    assert count(stack, "liuzr", "【巡检超时】") == 1 and "赵丽" in last_text(stack, "liuzr")
    await at(stack, minutes=30)
    assert count(stack, "liuzr", "【巡检超时】") == 1
    await forged_tap(stack, "sunkz", card, "已完成")
    assert "不是今日巡检的值班人员" in last_text(stack, "sunkz")
    await tap(stack, "zhaoli", "已完成")
    assert "巡检完成（已超时）" in last_text(stack, "zhaoli")
    assert not stack.sim.card(card["task_id"]).is_active_for("zhaoli")


async def test_inspection_done_in_time_stops_reminders(duty_stack: Stack) -> None:
    stack = duty_stack
    await at(stack, hours=2)
    await tap(stack, "zhaoli", "已完成")
    await at(stack, hours=3)
    assert count(stack, "zhaoli", "【巡检提醒】") == 0 and count(stack, "liuzr", "【巡检超时】") == 0


async def test_incident_paged_until_acknowledged_then_escalated(duty_stack: Stack) -> None:
    stack = duty_stack
    await at(stack, minutes=31)
    await say(stack, "sunkz", "/alert 网站首页出现异常链接")
    assert "已报告突发事件1号" in last_text(stack, "sunkz") and "赵丽" in last_text(stack, "sunkz")
    first = active_card(stack, "zhaoli").payload["template_card"]
    assert "网站首页出现异常链接" in first["sub_title_text"]
    for _ in range(3):
        await at(stack, minutes=5)
    pages = [
        d
        for d in stack.sim.inbox("zhaoli")
        if d.msgtype == "template_card" and "突发" in d.payload["template_card"]["main_title"]["title"]
    ]
    assert len(pages) == 4, "paged at 0, 5, 10 and 15 minutes"
    assert count(stack, "liuzr", "【突发事件上报】") == 1 and count(stack, "chenfb", "【突发事件上报】") == 1
    await at(stack, minutes=5)
    assert count(stack, "liuzr", "【突发事件上报】") == 1, "escalated once"
    await tap(stack, "zhaoli", "收到")
    assert "事件1号已确认收到" in last_text(stack, "zhaoli") and "已确认收到" in last_text(stack, "sunkz")
    await at(stack, minutes=30)
    pages_after = [
        d
        for d in stack.sim.inbox("zhaoli")
        if d.msgtype == "template_card" and "突发" in d.payload["template_card"]["main_title"]["title"]
    ]
    assert len(pages_after) == 5, "no more pages after 收到"
    # Every page is greyed but the one tapped, which now offers only 已处置.
    in_hand = [
        d
        for d in pages_after
        if stack.sim.card(d.payload["template_card"]["task_id"]).is_active_for("zhaoli")
    ]
    assert len(in_hand) == 1
    handling = current_card(stack, "zhaoli", in_hand[0])
    assert (
        handling["main_title"]["title"] == "【突发】事件1号，处置中"
        and "赵丽 已收到" in handling["main_title"]["desc"]
    )
    assert [b["text"] for b in handling["button_list"]] == ["已处置"]
    greyed = {
        stack.sim.card(d.payload["template_card"]["task_id"]).greyed.get("zhaoli") for d in pages_after
    } - {None}
    assert greyed == {"已收到·赵丽"}
    await tap(stack, "zhaoli", "已处置")
    assert not any(
        stack.sim.card(d.payload["template_card"]["task_id"]).is_active_for("zhaoli") for d in pages_after
    )
    await say(stack, "sunkz", "/incidents 1")
    timeline = last_text(stack, "sunkz")
    for step in ("孙科长 报告", "通知值班 → 赵丽", "上报 → 刘主任、陈发布", "赵丽 收到", "赵丽 处置完毕"):
        assert step in timeline, step


async def test_a_page_still_queued_at_ack_is_greyed_once_it_goes_out(duty_stack: Stack) -> None:
    stack = duty_stack
    await at(stack, minutes=31)
    await say(stack, "sunkz", "/alert 微博账号被盗")
    first = active_card(stack, "zhaoli")
    stack.sim.fail_next("/message/send", -1)  # WeCom is busy: the 5-minute page waits for a retry
    await at(stack, minutes=5)
    assert len(cards(stack, "zhaoli")) == 1
    await tap(stack, "zhaoli", "收到")
    assert current_card(stack, "zhaoli", first)["button_list"][0]["text"] == "已处置"
    stack.clock.advance(seconds=10)  # type: ignore[attr-defined]
    await stack.drain()
    late = cards(stack, "zhaoli")[-1]
    assert late is not first and "事件1号" in late.payload["template_card"]["main_title"]["title"]
    assert stack.sim.card(late.payload["template_card"]["task_id"]).greyed == {"zhaoli": "已收到·赵丽"}
    assert active_card(stack, "zhaoli") is first


async def test_incident_acknowledged_in_time_is_not_escalated(duty_stack: Stack) -> None:
    stack = duty_stack
    await at(stack, minutes=31)
    await say(stack, "sunkz", "突发 停电")
    await at(stack, minutes=3)
    await tap(stack, "zhaoli", "收到")
    await at(stack, minutes=30)
    assert count(stack, "liuzr", "【突发事件上报】") == 0
    await say(stack, "wangxm", "/alert")
    assert "用法：/alert" in last_text(stack, "wangxm")


async def test_gap_warning_daily_until_fixed(database_url: str) -> None:
    settings = duty_settings(database_url)
    settings = settings.model_copy(
        update={
            "duty": settings.duty.model_copy(
                update={"rotation": (), "leader_rotation": (), "rotation_start": None}
            )
        }
    )
    async with running_stack(settings, FrozenClock(START)) as stack:
        await at(stack, hours=1, minutes=30)  # 09:30
        assert count(stack, "chenfb", "【排班缺口】") == 1
        await at(stack, hours=3)
        assert count(stack, "chenfb", "【排班缺口】") == 1, "once a day"
        await at(stack, hours=24)
        assert count(stack, "chenfb", "【排班缺口】") == 2
        for day in range(24, 31):
            await say(stack, "chenfb", f"/duty swap 2026-11-{day} zhaoli")
        await at(stack, hours=24)
        assert count(stack, "chenfb", "【排班缺口】") == 2, "no warning once every hour is covered"


def test_rotation_uses_holiday_order_on_holidays_and_not_on_make_up_workdays(sqlite_url: str) -> None:
    # 刘主任 also stands watch on holidays here: a rotation names only people with the duty role.
    staff = [{**m, "roles": [*m["roles"], "duty"]} if m["userid"] == "liuzr" else m for m in DEMO_STAFF]
    settings = stack_settings(
        sqlite_url,
        {"staff": staff, "duty": {**DUTY, "rotation_start": "2026-09-20", "holiday_rotation": ["liuzr"]}},
    )
    primary = {
        d: [s.userid for s in rotation_for(settings, d) if s.role == "primary"]
        for d in (
            date(2026, 9, 20),
            date(2026, 9, 21),
            date(2026, 9, 25),
            date(2026, 10, 1),
            date(2026, 10, 10),
        )
    }
    assert primary[date(2026, 9, 20)] == ["zhaoli"], "Sunday 9-20 is a 调休 workday"
    assert primary[date(2026, 9, 21)] == ["wangxm"]
    assert primary[date(2026, 9, 25)] == ["liuzr"], "中秋 holiday"
    assert primary[date(2026, 10, 1)] == ["liuzr"], "国庆"
    assert primary[date(2026, 10, 10)] == ["zhaoli"], "Saturday 10-10 is a 调休 workday"
    assert rotation_for(settings, date(2026, 9, 19)) == [], "nothing before the rotation starts"
