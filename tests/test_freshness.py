"""The 14×24-hour update rule on simulated time: warnings, overdue alarms, digest, posts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.cli.stack import Stack
from storage.account_models import Account
from tests.flow import at, count, last_text, say, tap, texts
from tests.test_review_flow import SUBMISSION

FRESHNESS = {
    "warn_hours": [72, 24, 6],
    "digest_time": "08:30",
    "lifecycle_chain": [],  # 注销 at once (the approval of it: tests/test_account_lifecycle.py)
    "accounts": [
        {"name": "示范发布", "platform": "微信公众号", "unit": "市政府办公室", "owners": ["zhaoli"]},
        {"name": "示范微博", "platform": "微博", "owners": ["wangxm"], "period_hours": 168},
    ],
}
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai


async def account(stack: Stack, name: str) -> Account:
    async with stack.db() as session:
        return (await session.exec(select(Account).where(Account.name == name))).one()


async def test_deadline_is_last_post_plus_336_hours_exactly(fresh_stack: Stack) -> None:
    stack = fresh_stack
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    row = await account(stack, "示范发布")
    assert row.deadline_at == START + timedelta(hours=336)
    await say(stack, "wangxm", "/posted 示范微博 2026-11-22 09:15 转载上级稿件")
    weibo = await account(stack, "示范微博")
    assert weibo.deadline_at == datetime(2026, 11, 22, 1, 15, tzinfo=UTC) + timedelta(hours=168)


async def test_warnings_each_once_then_daily_overdue_alarm(fresh_stack: Stack) -> None:
    stack = fresh_stack
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    await at(stack, hours=336 - 73)
    assert count(stack, "zhaoli", "【更新提醒】") == 0
    await at(stack, hours=1, minutes=1)  # 71h59m left
    assert count(stack, "zhaoli", "【更新提醒】") == 1 and "剩余 2 天 23 小时" in last_text(stack, "zhaoli")
    await stack.restart_bot()
    await at(stack, hours=1)
    assert count(stack, "zhaoli", "【更新提醒】") == 1, "not again after a restart"
    await at(stack, hours=47)  # 23h59m left
    await at(stack, hours=18)  # 5h59m left
    assert count(stack, "zhaoli", "【更新提醒】") == 3
    await at(stack, hours=6)  # overdue
    assert count(stack, "zhaoli", "【超期告警】") == 1 and count(stack, "chenfb", "【超期告警】示范发布") == 1
    await at(stack, hours=12)
    assert count(stack, "zhaoli", "【超期告警】") == 1
    await at(stack, hours=12)
    assert count(stack, "zhaoli", "【超期告警】") == 2, "repeated daily"
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    await at(stack, hours=30)
    assert count(stack, "zhaoli", "【超期告警】") == 2, "a post stops the alarm"


async def test_downtime_across_thresholds_sends_one_warning(fresh_stack: Stack) -> None:
    stack = fresh_stack
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    stack.clock.advance(hours=336 - 20)  # type: ignore[attr-defined]  # down past the 72h and 24h marks
    await at(stack)
    assert count(stack, "zhaoli", "【更新提醒】") == 1 and "剩余 20 小时" in last_text(stack, "zhaoli")
    await at(stack, hours=10)
    assert count(stack, "zhaoli", "【更新提醒】") == 1, "the 24h occasion was used up by the catch-up"
    stack.clock.advance(days=4)  # type: ignore[attr-defined]
    await at(stack)
    assert count(stack, "zhaoli", "【超期告警】") == 1, "three missed days, one alarm"


async def test_per_account_period_override(fresh_stack: Stack) -> None:
    stack = fresh_stack
    await say(stack, "wangxm", "/posted 示范微博 转载上级稿件")
    await at(stack, hours=168 - 5)
    assert count(stack, "wangxm", "【更新提醒】") == 1 and "7 天更新期限" in last_text(stack, "wangxm")


async def test_published_draft_updates_the_account(fresh_stack: Stack) -> None:
    stack = fresh_stack
    await say(stack, "wangxm", SUBMISSION)
    await say(stack, "chenfb", "/published 1 示范发布")
    assert "未通过三审的稿件不能发布" in last_text(stack, "chenfb")
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")
    await say(stack, "zhaoli", "/published 1 示范发布")
    assert "没有使用 /published 的权限" in last_text(stack, "zhaoli")
    await say(stack, "chenfb", "/published 1 不存在的号")
    assert "没有名为“不存在的号”的账号" in last_text(stack, "chenfb")
    await say(stack, "chenfb", "/published 1 示范发布 ftp://x")
    assert "链接应以 http" in last_text(stack, "chenfb")
    await say(stack, "chenfb", "/published 1 示范发布 https://example.gov.cn/a/1")
    assert "已在“示范发布”发布" in last_text(stack, "chenfb") and "剩余 14 天 0 小时" in last_text(
        stack, "chenfb"
    )
    assert "已在“示范发布”发布" in last_text(stack, "wangxm")
    row = await account(stack, "示范发布")
    assert row.deadline_at == START + timedelta(hours=336)
    await say(stack, "wangxm", "/draft 1")
    assert "已发布到 示范发布" in last_text(stack, "wangxm")


async def test_posted_permissions_and_bad_input(fresh_stack: Stack) -> None:
    stack = fresh_stack
    await say(stack, "wangxm", "/posted 示范发布 转载上级稿件")
    assert "只有“示范发布”的负责人或管理员" in last_text(stack, "wangxm")
    await say(stack, "zhaoli", "/posted 示范发布 昨天")
    assert "应写成 YYYY-MM-DD HH:MM" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "/posted 示范发布 2026-12-30 10:00 转载上级稿件")
    assert "不能晚于现在" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "/posted 示范发布")
    assert "经过本系统三审了吗" in last_text(stack, "zhaoli") and "/posted 示范发布 [时间] 原因" in last_text(
        stack, "zhaoli"
    )
    assert (await account(stack, "示范发布")).last_post_at is None


async def test_digest_and_account_admin_commands(fresh_stack: Stack) -> None:
    stack = fresh_stack
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    await say(stack, "wangxm", "/accounts add 新号 抖音 wangxm")
    assert "只有管理员可以增改账号" in last_text(stack, "wangxm")
    await say(stack, "chenfb", "/accounts add 示范抖音 抖音 wangxm")
    assert "已登记账号“示范抖音”" in last_text(stack, "chenfb")
    await say(stack, "chenfb", "/accounts pause 示范微博 2026-12-01 平台改版临时下线")
    await say(stack, "chenfb", "/accounts frobnicate")
    assert "用法：/accounts" in last_text(stack, "chenfb")
    await at(stack, hours=22, minutes=31)  # Tuesday 08:31
    digests = [t for t in texts(stack, "chenfb") if "【账号更新日报】" in t]
    assert len(digests) == 1
    assert digests[0].splitlines()[1:] == [
        "1. 示范发布（微信公众号）：剩余 13 天 1 小时，期限 12-07 10:00（最近一次更新未经本系统审核）",
        "2. 示范抖音（抖音）：剩余 13 天 1 小时，期限 12-07 10:00（无更新记录，自登记起算）",
        "3. 示范微博（微博）：暂停考核至 12-01（平台改版临时下线）",
    ]
    await at(stack, hours=3)
    assert count(stack, "chenfb", "【账号更新日报】") == 1
    await say(stack, "sunkz", "账号")
    assert "示范发布" in last_text(stack, "sunkz")
