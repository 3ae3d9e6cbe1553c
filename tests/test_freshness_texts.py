"""The update rule's messages word for word, and who gets them when: 【更新提醒】 to owners as each
threshold passes (the most urgent one only after downtime), 【超期告警】 to owners and admins once
per overdue day, and the admins' 【账号更新日报】 once a day from digest_time.

The sweeps are called directly at instants set on the FrozenClock, so a boundary is hit to the
second; their return value is what the Sweeper reports (it wakes the sender only when a sweep
says that something fired).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

import scheduler.freshness
from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.core.config import Settings
from scheduler.freshness import freshness_digest, freshness_warnings, pauses_ending
from scheduler.sweeper import SweepContext
from tests.flow import last_text, say, texts
from tests.test_freshness import FRESHNESS

CONFIG = {
    **FRESHNESS,  # the two accounts of the 14-day rule tests, plus one without owners and an admin's
    "accounts": [
        *FRESHNESS["accounts"],
        {"name": "无主账号", "platform": "网站"},
        {"name": "管理员的号", "platform": "抖音", "owners": ["chenfb", "zhaoli"]},
    ],
}
START = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai
DEADLINE = START + timedelta(hours=336)  # of an account posted at START: 12-07 10:00
ADMIN = "chenfb"
WARN = "【更新提醒】"
ALARM = "【超期告警】"
DIGEST = "【账号更新日报】"
PEOPLE = ("wangxm", "zhaoli", "zhangkz", "sunkz", "liuzr", "chenfb")


@pytest.fixture
async def fresh(sqlite_url: str) -> AsyncIterator[Stack]:
    settings = stack_settings(sqlite_url, {"freshness": CONFIG})
    async with running_stack(settings, FrozenClock(START)) as stack:
        yield stack


async def only(stack: Stack, *names: str) -> None:
    """The other accounts are 注销 (closed): an account without a post is assessed from its
    registration, so they would warn and alarm too."""
    for account in CONFIG["accounts"]:
        if account["name"] not in names:
            await say(stack, ADMIN, f"/accounts close {account['name']}")
            assert "已注销" in last_text(stack, ADMIN)


def set_time(stack: Stack, when: datetime) -> None:
    assert isinstance(stack.clock, FrozenClock)
    stack.clock.set(when)


def context(stack: Stack, settings: Settings | None = None) -> SweepContext:
    now = stack.clock.now()
    return SweepContext(settings or stack.settings, stack.db, stack.clock, now, "test-sweeper")


async def warnings(stack: Stack, settings: Settings | None = None) -> int:
    """One run of the warning sweep now; what it queued is then delivered."""
    fired = await freshness_warnings(context(stack, settings))
    await stack.drain()
    return fired


async def digest(stack: Stack, settings: Settings | None = None) -> int:
    fired = await freshness_digest(context(stack, settings))
    await stack.drain()
    return fired


def notices(stack: Stack, user: str, head: str) -> list[str]:
    return [t for t in texts(stack, user) if t.startswith(head)]


def with_warn_hours(settings: Settings, hours: tuple[int, ...]) -> Settings:
    return settings.model_copy(
        update={"freshness": settings.freshness.model_copy(update={"warn_hours": hours})}
    )


def warning(name: str, platform: str, left: str, deadline: str, days: int = 14) -> str:
    return (
        f"【更新提醒】{name}（{platform}）距 {days} 天更新期限{left}（期限 {deadline}），请及时发布。"
        f"发布后请发送 /published 编号 {name}（未经本系统审核的：/posted {name} 原因）。"
    )


def alarm(name: str, platform: str, unit: str, over: str, last: str, days: int = 14) -> str:
    return (
        f"【超期告警】{name}（{platform}，{unit}）超过 {days} 天未更新，{over}"
        f"（上次更新 {last}）。请立即更新，每天提醒直至更新。"
    )


# ------------------------------------------------------------------ 【更新提醒】


async def test_the_first_warning_comes_exactly_at_the_horizon(fresh: Stack) -> None:
    stack = fresh
    await only(stack, "示范发布")
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    set_time(stack, DEADLINE - timedelta(hours=72, seconds=1))
    assert await warnings(stack) == 0
    assert notices(stack, "zhaoli", WARN) == []
    set_time(stack, DEADLINE - timedelta(hours=72))
    assert await warnings(stack) == 1
    first = warning("示范发布", "微信公众号", "剩余 3 天 0 小时", "12-07 10:00")
    assert notices(stack, "zhaoli", WARN) == [first]
    assert await warnings(stack) == 0, "once per threshold"
    set_time(stack, DEADLINE - timedelta(hours=23, minutes=30))
    assert await warnings(stack) == 1
    second = warning("示范发布", "微信公众号", "剩余 23 小时", "12-07 10:00")
    assert notices(stack, "zhaoli", WARN) == [first, second]
    others = [user for user in PEOPLE if user != "zhaoli"]
    assert all(notices(stack, user, WARN) == [] for user in others), "owners only"


async def test_after_downtime_only_the_most_urgent_threshold_is_sent(fresh: Stack) -> None:
    stack = fresh
    await only(stack, "示范发布")
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    set_time(stack, DEADLINE - timedelta(hours=5))  # the 72, 24 and 6 hour marks all passed unseen
    assert await warnings(stack) == 1
    assert notices(stack, "zhaoli", WARN) == [warning("示范发布", "微信公众号", "剩余 5 小时", "12-07 10:00")]
    set_time(stack, DEADLINE - timedelta(hours=1))
    assert await warnings(stack) == 0


async def test_a_threshold_added_later_is_not_sent_after_a_later_one(fresh: Stack) -> None:
    """An operator adds the 72-hour warning once the 24-hour one has gone out: nothing more is
    sent for it; a sooner threshold added later still is."""
    stack = fresh
    await only(stack, "示范发布")
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    set_time(stack, DEADLINE - timedelta(hours=20))
    assert await warnings(stack, with_warn_hours(stack.settings, (24,))) == 1
    assert await warnings(stack, with_warn_hours(stack.settings, (72, 24))) == 0
    set_time(stack, DEADLINE - timedelta(hours=5))
    assert await warnings(stack, with_warn_hours(stack.settings, (72, 24, 6))) == 1
    assert notices(stack, "zhaoli", WARN) == [
        warning("示范发布", "微信公众号", "剩余 20 小时", "12-07 10:00"),
        warning("示范发布", "微信公众号", "剩余 5 小时", "12-07 10:00"),
    ]


async def test_every_account_due_is_warned_in_one_sweep_ownerless_ones_to_the_admins(
    fresh: Stack,
) -> None:
    stack = fresh
    await only(stack, "示范发布", "无主账号", "管理员的号")
    for name in ("示范发布", "无主账号", "管理员的号"):
        await say(stack, ADMIN, f"/posted {name} 转载上级稿件")
    set_time(stack, DEADLINE - timedelta(hours=6))
    assert await warnings(stack) == 3
    left, deadline = "剩余 6 小时", "12-07 10:00"
    assert sorted(notices(stack, ADMIN, WARN)) == sorted(
        [
            warning("无主账号", "网站", left, deadline),
            warning("管理员的号", "抖音", left, deadline),
        ]
    )
    assert sorted(notices(stack, "zhaoli", WARN)) == sorted(
        [
            warning("示范发布", "微信公众号", left, deadline),
            warning("管理员的号", "抖音", left, deadline),
        ]
    )


async def test_the_period_of_the_account_is_named(fresh: Stack) -> None:
    stack = fresh
    await only(stack, "示范微博")
    await say(stack, "wangxm", "/posted 示范微博 转载上级稿件")
    set_time(stack, START + timedelta(hours=168 - 6))
    assert await warnings(stack) == 1
    assert notices(stack, "wangxm", WARN) == [
        warning("示范微博", "微博", "剩余 6 小时", "11-30 10:00", days=7)
    ]


async def test_paused_accounts_are_left_alone_until_the_pause_ends(fresh: Stack) -> None:
    stack = fresh
    await only(stack, "示范发布")
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    set_time(stack, DEADLINE - timedelta(days=10))  # 11-27 10:00
    await say(stack, ADMIN, "/accounts pause 示范发布 2026-12-20 平台改版临时下线")
    assert "暂停考核至 2026-12-20（平台改版临时下线）" in last_text(stack, ADMIN)
    for when in (DEADLINE - timedelta(hours=5), DEADLINE + timedelta(days=1)):
        set_time(stack, when)
        assert await warnings(stack) == 0
    assert all(notices(stack, user, head) == [] for user in PEOPLE for head in (WARN, ALARM))
    end = datetime(2026, 12, 20, 16, 0, tzinfo=UTC)  # 12-21 00:00 in Shanghai
    set_time(stack, end)
    assert await pauses_ending(context(stack)) == 1 and await pauses_ending(context(stack)) == 0
    await stack.drain()
    resumed = "【恢复考核】示范发布（微信公众号）暂停期满，已恢复更新考核：请在 01-04 00:00 前更新（14 天期限自 12-21 00:00 起算）。"
    assert notices(stack, "zhaoli", "【恢复考核】") == [resumed] and notices(
        stack, ADMIN, "【恢复考核】"
    ) == [resumed]
    set_time(stack, end + timedelta(hours=336 - 6))
    assert await warnings(stack) == 1
    assert notices(stack, "zhaoli", WARN) == [warning("示范发布", "微信公众号", "剩余 6 小时", "01-04 00:00")]


# ------------------------------------------------------------------ 【超期告警】


async def test_overdue_alarm_to_owners_and_admins_once_per_overdue_day(fresh: Stack) -> None:
    stack = fresh
    await only(stack, "示范发布")
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    # no sweep ran before: no warnings either
    set_time(stack, DEADLINE + timedelta(days=1, hours=2, minutes=59))
    assert await warnings(stack) == 1
    day1 = alarm("示范发布", "微信公众号", "市政府办公室", "已超期 1 天 2 小时", "11-23 10:00")
    assert notices(stack, "zhaoli", ALARM) == [day1] and notices(stack, ADMIN, ALARM) == [day1]
    assert notices(stack, "zhaoli", WARN) == []
    set_time(stack, DEADLINE + timedelta(days=1, hours=23, minutes=59))
    assert await warnings(stack) == 0, "once a day"
    set_time(stack, DEADLINE + timedelta(days=2))
    assert await warnings(stack) == 1
    day2 = alarm("示范发布", "微信公众号", "市政府办公室", "已超期 2 天 0 小时", "11-23 10:00")
    assert notices(stack, "zhaoli", ALARM) == [day1, day2]
    assert notices(stack, ADMIN, ALARM) == [day1, day2]
    set_time(stack, DEADLINE + timedelta(days=5, hours=7))  # three days down: today's alarm only
    assert await warnings(stack) == 1
    assert notices(stack, ADMIN, ALARM)[2:] == [
        alarm("示范发布", "微信公众号", "市政府办公室", "已超期 5 天 7 小时", "11-23 10:00")
    ]
    others = [user for user in PEOPLE if user not in ("zhaoli", ADMIN)]
    assert all(notices(stack, user, ALARM) == [] for user in others)


async def test_the_alarm_comes_at_the_deadline_itself(fresh: Stack) -> None:
    """At the deadline the time is up: the alarm, which says it is overdue by nothing yet."""
    stack = fresh
    await only(stack, "示范微博")
    await say(stack, "wangxm", "/posted 示范微博 转载上级稿件")
    set_time(stack, START + timedelta(hours=168))
    assert await warnings(stack) == 1
    expected = alarm("示范微博", "微博", "未填单位", "已超期 0 天 0 小时", "11-23 10:00", days=7)
    assert notices(stack, "wangxm", ALARM) == [expected] and notices(stack, ADMIN, ALARM) == [expected]
    assert notices(stack, "wangxm", WARN) == []


async def test_an_admin_who_owns_the_account_is_alarmed_once(fresh: Stack) -> None:
    stack = fresh
    await only(stack, "管理员的号", "无主账号")
    await say(stack, ADMIN, "/posted 管理员的号 转载上级稿件")
    await say(stack, ADMIN, "/posted 无主账号 转载上级稿件")
    set_time(stack, DEADLINE + timedelta(hours=1))
    assert await warnings(stack) == 2
    over = "已超期 0 天 1 小时"
    mine = alarm("管理员的号", "抖音", "未填单位", over, "11-23 10:00")
    ownerless = alarm("无主账号", "网站", "未填单位", over, "11-23 10:00")
    assert sorted(notices(stack, ADMIN, ALARM)) == sorted([mine, ownerless])
    assert notices(stack, "zhaoli", ALARM) == [mine]


async def test_without_warning_thresholds_the_alarm_still_comes(fresh: Stack) -> None:
    stack = fresh
    await only(stack, "示范发布")
    silent = with_warn_hours(stack.settings, ())
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")
    set_time(stack, DEADLINE - timedelta(minutes=1))
    assert await warnings(stack, silent) == 0
    set_time(stack, DEADLINE + timedelta(minutes=30))
    assert await warnings(stack, silent) == 1
    expected = alarm("示范发布", "微信公众号", "市政府办公室", "已超期 0 天 0 小时", "11-23 10:00")
    assert notices(stack, "zhaoli", ALARM) == [expected]
    assert notices(stack, "zhaoli", WARN) == []


# ------------------------------------------------------------------ 【账号更新日报】

TUESDAY_0830 = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)


async def test_the_digest_lists_every_active_account_by_time_left(fresh: Stack) -> None:
    stack = fresh
    await say(stack, "zhaoli", "/posted 示范发布 转载上级稿件")  # deadline 12-07 10:00
    await say(stack, "wangxm", "/posted 示范微博 2026-11-10 09:15 转载上级稿件")  # 7 days: 11-17 09:15
    await say(stack, ADMIN, "/posted 无主账号 2026-11-20 14:00 转载上级稿件")  # 12-04 14:00
    set_time(stack, TUESDAY_0830 - timedelta(seconds=1))
    assert await digest(stack) == 0
    assert notices(stack, ADMIN, DIGEST) == []
    set_time(stack, TUESDAY_0830)
    assert await digest(stack) == 1
    assert notices(stack, ADMIN, DIGEST) == [
        "【账号更新日报】11月24日，共 4 个账号，按剩余时间排列：\n"
        "1. 示范微博（微博）：已超期 6 天 23 小时，期限 11-17 09:15（最近一次更新未经本系统审核）\n"
        "2. 无主账号（网站）：剩余 10 天 5 小时，期限 12-04 14:00（最近一次更新未经本系统审核）\n"
        "3. 示范发布（微信公众号）：剩余 13 天 1 小时，期限 12-07 10:00（最近一次更新未经本系统审核）\n"
        "4. 管理员的号（抖音）：剩余 13 天 1 小时，期限 12-07 10:00（无更新记录，自登记起算）"
    ]
    others = [user for user in PEOPLE if user != ADMIN]
    assert all(notices(stack, user, DIGEST) == [] for user in others), "admins only"
    set_time(stack, TUESDAY_0830 + timedelta(hours=15, minutes=29))  # 23:59 the same day
    assert await digest(stack) == 0
    set_time(stack, TUESDAY_0830 + timedelta(days=1))
    assert await digest(stack) == 1
    assert len(notices(stack, ADMIN, DIGEST)) == 2
    assert last_text(stack, ADMIN).startswith(
        "【账号更新日报】11月25日，共 4 个账号，按剩余时间排列：\n1. 示范微博"
    )


async def test_no_digest_without_admins(fresh: Stack) -> None:
    stack = fresh
    staff = tuple(
        m.model_copy(update={"roles": tuple(r for r in m.roles if r != "admin")})
        for m in stack.settings.staff
    )
    no_admins = stack.settings.model_copy(update={"staff": staff})
    set_time(stack, TUESDAY_0830)
    assert await digest(stack, no_admins) == 0
    assert await digest(stack) == 1, "the day was not used up"


async def test_no_digest_without_accounts_and_the_day_is_not_used_up(sqlite_stack: Stack) -> None:
    stack = sqlite_stack  # no accounts configured; 09:00 on a Monday
    assert stack.settings.freshness.accounts == ()
    assert await digest(stack) == 0
    assert notices(stack, ADMIN, DIGEST) == []
    await say(stack, ADMIN, "/accounts add 新号 网站 wangxm")
    assert await digest(stack) == 1
    assert notices(stack, ADMIN, DIGEST)[0].endswith(
        "共 1 个账号，按剩余时间排列：\n1. 新号（网站）：剩余 14 天 0 小时，期限 12-07 09:00（无更新记录，自登记起算）"
    )


async def test_an_instance_that_loses_the_race_for_the_digest_sends_nothing(
    fresh: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instances both see no digest today; the one whose claim comes second stays silent."""
    stack = fresh
    set_time(stack, TUESDAY_0830)
    assert await digest(stack) == 1

    async def not_yet(**_: object) -> bool:
        return False

    monkeypatch.setattr(scheduler.freshness, "was_claimed", not_yet)
    assert await digest(stack) == 0
    assert len(notices(stack, ADMIN, DIGEST)) == 1
