"""发布后复核 (湛江 细则 三(三)2): each /published opens a re-check for the 二审 reviewer who passed
the version, due two working-day hours later; 确认无误 on the card or a problem written down with
/recheck; overdue re-checks reported once and then reminded daily; wrong people change nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from bot.cli.stack import Stack
from bot.rules.calendar import add_working_time, end_of_day, last_day_of
from storage.account_models import Recheck
from storage.models import AuditEntry
from tests.flow import active_card, at, count, last_text, say, tap
from tests.test_freshness import START
from tests.test_review_flow import SUBMISSION

LINK = "https://www.example.gov.cn/art/2026/11/23/1.html"
PROBLEM = "【发布后复核·发现问题】"


async def publish(fresh_stack: Stack) -> None:
    await say(fresh_stack, "wangxm", SUBMISSION)
    for reviewer in ("wangxm", "zhangkz", "liuzr"):
        await tap(fresh_stack, reviewer, "同意")
    await say(fresh_stack, "chenfb", f"/published 1 示范发布 {LINK}")


async def rechecks(fresh_stack: Stack) -> list[Recheck]:
    async with fresh_stack.db() as session:
        return list((await session.exec(select(Recheck))).all())


async def test_publishing_opens_a_recheck_for_the_second_stage_reviewer(fresh_stack: Stack) -> None:
    await publish(fresh_stack)
    assert "发布后复核（1号）已交张科长，请于 11-23 12:00 前完成。" in last_text(fresh_stack, "chenfb")
    card = active_card(fresh_stack, "zhangkz").payload["template_card"]
    assert card["main_title"]["title"] == "【发布后复核】关于开展2025年防汛演练的通知"
    assert card["card_action"] == {"type": 1, "url": LINK}
    assert [b["text"] for b in card["button_list"]] == ["确认无误", "发现问题"]
    (item,) = await rechecks(fresh_stack)
    assert (item.assignee_list, item.due_at, item.outcome) == (["zhangkz"], START + timedelta(hours=2), "")

    await say(fresh_stack, "sunkz", "/recheck 1 无误")
    assert "由张科长负责，本次操作未生效" in last_text(fresh_stack, "sunkz")
    await tap(fresh_stack, "zhangkz", "确认无误")
    assert (
        last_text(fresh_stack, "zhangkz")
        == "已记录：稿件1号《关于开展2025年防汛演练的通知》在“示范发布”发布后复核无误。"
    )
    (item,) = await rechecks(fresh_stack)
    assert (item.outcome, item.done_by, item.done_at) == ("ok", "zhangkz", START)
    await say(fresh_stack, "chenfb", "/recheck 1 无误")
    assert "已由张科长完成（复核无误），本次操作未生效" in last_text(fresh_stack, "chenfb")
    await say(fresh_stack, "wangxm", "/draft 1")
    timeline = last_text(fresh_stack, "wangxm")
    assert (
        "陈发布 发布后复核交办给张科长（示范发布）" in timeline
        and "张科长 发布后复核无误（示范发布）" in timeline
    )
    await at(fresh_stack, days=3)
    assert count(fresh_stack, "zhangkz", "【复核") == 0, "done: no reminder"


async def test_a_problem_must_be_written_down_and_reaches_submitter_publisher_admins(
    fresh_stack: Stack,
) -> None:
    await publish(fresh_stack)
    await tap(fresh_stack, "zhangkz", "发现问题")
    assert "请写明发现的问题：/recheck 1 问题 说明" in last_text(fresh_stack, "zhangkz")
    await say(fresh_stack, "zhangkz", "/recheck 1 问题")
    assert "请写明发现的问题" in last_text(fresh_stack, "zhangkz")
    await say(fresh_stack, "zhangkz", "/recheck 1 好")
    assert "用法：/recheck" in last_text(fresh_stack, "zhangkz")
    assert (await rechecks(fresh_stack))[0].outcome == ""
    await say(fresh_stack, "zhangkz", "/recheck 1 问题 第二段演练时间与通知不一致")
    assert "发现问题（第二段演练时间与通知不一致），已告知投稿人、发布人和管理员" in last_text(
        fresh_stack, "zhangkz"
    )
    expected = (
        f"{PROBLEM}稿件1号《关于开展2025年防汛演练的通知》在“示范发布”（{LINK}）发布后复核，"
        "张科长发现问题：第二段演练时间与通知不一致。请立即核实，需要时纠错（/correct 1 种类 说明）"
        "或撤稿（/retract 1 种类 理由）。"
    )
    assert last_text(fresh_stack, "wangxm") == expected and last_text(fresh_stack, "chenfb") == expected
    assert count(fresh_stack, "zhangkz", PROBLEM) == 0 and count(fresh_stack, "liuzr", PROBLEM) == 0
    async with fresh_stack.db() as session:
        entry = (await session.exec(select(AuditEntry).where(AuditEntry.action == "recheck_problem"))).one()
    assert entry.details == {
        "recheck": 1,
        "account": "示范发布",
        "note": "第二段演练时间与通知不一致",
        "late": False,
    }


async def test_an_overdue_recheck_is_reported_once_then_reminded_daily(fresh_stack: Stack) -> None:
    await publish(fresh_stack)
    await at(fresh_stack, hours=1, minutes=59)
    assert count(fresh_stack, "zhangkz", "【复核超时】") == 0
    await at(fresh_stack, minutes=1)
    overdue = "【复核超时】稿件1号《关于开展2025年防汛演练的通知》在“示范发布”发布后应于 11-23 12:00 前复核（张科长负责），至今未完成。"
    assert last_text(fresh_stack, "zhangkz").startswith(overdue) and last_text(
        fresh_stack, "chenfb"
    ).startswith(overdue)
    await at(fresh_stack, hours=12)
    assert count(fresh_stack, "zhangkz", "【复核") == 1, "once, not every sweep"
    await at(fresh_stack, hours=12)
    assert last_text(fresh_stack, "zhangkz").startswith(
        "【复核提醒】稿件1号《关于开展2025年防汛演练的通知》在“示范发布”的发布后复核已超时 1 天"
    )
    assert count(fresh_stack, "chenfb", "【复核提醒】") == 0, "the daily reminder is the assignee's"
    await say(fresh_stack, "zhangkz", "/recheck")
    assert "1. 稿件1号《关于开展2025年防汛演练的通知》 · 示范发布 · 11-23 12:00 前（已超时）" in last_text(
        fresh_stack, "zhangkz"
    )
    await say(fresh_stack, "zhangkz", "/recheck 1 无误")
    assert "复核无误（已超时）" in last_text(fresh_stack, "zhangkz")
    await at(fresh_stack, days=2)
    assert count(fresh_stack, "zhangkz", "【复核") == 2
    await say(fresh_stack, "zhangkz", "/recheck")
    assert last_text(fresh_stack, "zhangkz") == "没有待完成的发布后复核。"


def test_the_due_time_counts_working_days_only() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    friday_2300 = datetime(2026, 11, 27, 23, 0, tzinfo=tz)
    assert add_working_time(friday_2300, timedelta(hours=2), tz) == datetime(2026, 11, 30, 1, 0, tzinfo=tz)
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=tz)
    assert add_working_time(saturday, timedelta(hours=2), tz) == datetime(2026, 11, 30, 2, 0, tzinfo=tz)
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=tz).astimezone(UTC)
    assert add_working_time(monday, timedelta(hours=2), tz) == monday + timedelta(hours=2)


def test_a_last_day_and_the_instant_it_ends_convert_both_ways() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    end = end_of_day(date(2026, 11, 30), tz)
    assert end == datetime(2026, 12, 1, 0, 0, tzinfo=tz)
    assert last_day_of(end, tz) == date(2026, 11, 30) and last_day_of(end + timedelta(seconds=1), tz) == date(
        2026, 12, 1
    )
