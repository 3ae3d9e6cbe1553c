"""The duty roster in phone calendars: /duty ical gives the asker a secret feed link, the feed is the roster."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from icalendar import Calendar
from sqlmodel import col, select

from bot.cli.stack import DEMO_STAFF, Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.core.log import RedactFilter
from storage.duty_models import Shift
from storage.models import AuditEntry
from tests.flow import at, last_text, say, texts

SHANGHAI = ZoneInfo("Asia/Shanghai")
SECRET = "feed-test-secret-" + "x" * 24
DUTY = {
    "rotation": ["zhaoli", "wangxm"],
    "leader_rotation": ["liuzr"],
    "rotation_start": "2026-11-23",
    "handover_time": "08:30",
    "gap_horizon_days": 3,
}
# Monday 2026-11-23 08:00 Asia/Shanghai: half an hour before the first handover.
START = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
LINK = re.compile(r"https?://\S+/ical/[a-z2-7]{32}\.ics")


def feed_settings(url: str, **web: Any) -> Any:
    return stack_settings(url, {"duty": DUTY, "web": {"session_secret": SECRET, **web}})


@pytest.fixture
async def feed_stack(database_url: str) -> AsyncIterator[Stack]:
    """The rotation planned for 11-23 … 11-27 (主班 赵丽/王小明 in turn, 带班领导 刘主任), at 08:31."""
    async with running_stack(feed_settings(database_url), FrozenClock(START)) as stack:
        await at(stack, minutes=31)
        yield stack


async def link_of(stack: Stack, user: str, label: str = "我的值班") -> str:
    await say(stack, user, "/duty ical")
    (line,) = [line for line in last_text(stack, user).splitlines() if line.startswith(label)]
    match = LINK.search(line)
    assert match is not None, line
    return match.group(0)


async def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, dict(response.headers), await response.read()


async def feed(url: str) -> Calendar:
    status, headers, body = await fetch(url)
    assert status == 200, body
    assert headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert headers["Cache-Control"].startswith("private, max-age=")
    return Calendar.from_ical(body)


async def roster(stack: Stack) -> list[Shift]:
    async with stack.db() as session:
        return list((await session.exec(select(Shift).order_by(col(Shift.start_at), col(Shift.role)))).all())


def events(calendar: Calendar) -> list[tuple[str, datetime, datetime, str]]:
    """(UID, start, end, summary) of each event, in order."""
    found = [
        (str(e["uid"]), e.decoded("dtstart"), e.decoded("dtend"), str(e["summary"]))
        for e in calendar.walk("VEVENT")
    ]
    return sorted(found, key=lambda event: (event[1], event[3]))


def expected(shifts: list[Shift], host: str) -> list[tuple[str, datetime, datetime, str]]:
    names = {m["userid"]: m["name"] for m in DEMO_STAFF}
    labels = {"primary": "主班", "deputy": "副班", "leader": "带班领导"}
    wanted = [
        (
            f"duty-shift-{s.id}@{host}",
            s.start_at.astimezone(SHANGHAI),
            s.end_at.astimezone(SHANGHAI),
            f"值班：{labels[s.role]} {names[s.userid]}",
        )
        for s in shifts
    ]
    return sorted(wanted, key=lambda event: (event[1], event[3]))


async def test_a_person_gets_their_own_link_and_it_holds_exactly_their_shifts(feed_stack: Stack) -> None:
    stack = feed_stack
    url = await link_of(stack, "zhaoli")
    reply = last_text(stack, "zhaoli")
    assert "全单位值班表" not in reply, "only admins get the unit's link"
    assert "iPhone" in reply and "Outlook" in reply and "请勿转发" in reply
    token = url.rsplit("/", 1)[1]
    for other in ("wangxm", "zhangkz", "sunkz", "liuzr", "chenfb"):
        assert not any(token in text for text in texts(stack, other)), "the link goes to the asker only"

    calendar = await feed(url)
    assert str(calendar["x-wr-calname"]) == "赵丽的值班"
    assert str(calendar["x-wr-timezone"]) == "Asia/Shanghai"
    assert [str(tz["tzid"]) for tz in calendar.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    mine = [s for s in await roster(stack) if s.userid == "zhaoli"]
    host = "127.0.0.1"
    assert events(calendar) == expected(mine, host)
    first = events(calendar)[0]
    assert first[1:] == (
        datetime(2026, 11, 23, 8, 30, tzinfo=SHANGHAI),
        datetime(2026, 11, 24, 8, 30, tzinfo=SHANGHAI),
        "值班：主班 赵丽",
    )
    assert len(mine) == 3  # 11-23, 11-25 and 11-27
    for event in calendar.walk("VEVENT"):
        assert event["dtstart"].params["TZID"] == "Asia/Shanghai"
        assert "带班领导 刘主任" in str(event["description"])
        assert event.decoded("dtstamp") == START + timedelta(minutes=31)

    # Fetched again later, the same events under the same UIDs: nothing is duplicated.
    await at(stack, hours=2)
    again = await feed(url)
    assert [e[0] for e in events(again)] == [e[0] for e in events(calendar)]

    await say(stack, "zhaoli", "/help 值班")
    assert "/duty ical" in last_text(stack, "zhaoli")


async def test_the_unit_feed_has_every_shift_and_is_for_admins(feed_stack: Stack) -> None:
    stack = feed_stack
    unit = await link_of(stack, "chenfb", "全单位值班表")
    assert await link_of(stack, "chenfb") != unit, "an admin gets their own link too"
    calendar = await feed(unit)
    assert str(calendar["x-wr-calname"]) == "示范市人民政府办公室 值班表"
    shifts = await roster(stack)
    assert len(shifts) == 10  # five days, 主班 and 带班领导 each
    assert events(calendar) == expected(shifts, "127.0.0.1")
    descriptions = {str(e["description"]) for e in calendar.walk("VEVENT")}
    assert "本班：主班 赵丽，带班领导 刘主任" in descriptions
    assert "本班：主班 王小明，带班领导 刘主任" in descriptions


def link_in(text: str) -> str:
    match = LINK.search(text)
    assert match is not None, text
    return match.group(0)


async def status_of(url: str) -> int:
    return (await fetch(url))[0]


async def renewals(stack: Stack) -> list[tuple[str, dict[str, Any]]]:
    async with stack.db() as session:
        rows = await session.exec(
            select(AuditEntry).where(AuditEntry.action == "duty_feed_renewed").order_by(col(AuditEntry.id))
        )
        return [(entry.actor, entry.details) for entry in rows.all()]


async def test_a_leaked_link_is_renewed_by_its_owner_and_no_other_link_changes(feed_stack: Stack) -> None:
    stack = feed_stack
    mine, theirs = await link_of(stack, "zhaoli"), await link_of(stack, "wangxm")
    unit = await link_of(stack, "chenfb", "全单位值班表")
    before = events(await feed(mine))

    await say(stack, "zhaoli", "/duty ical 重置")
    reply = last_text(stack, "zhaoli")
    assert "已更换您的链接" in reply and "旧链接已失效" in reply and "请勿转发" in reply
    renewed = link_in(reply)
    assert renewed != mine
    assert await status_of(mine) == 404, "the leaked link opens nothing any more"
    assert events(await feed(renewed)) == before, "the new link holds the same shifts"
    assert await link_of(stack, "zhaoli") == renewed, "/duty ical now gives the new link"
    assert (await status_of(theirs), await status_of(unit)) == (200, 200), "other links are untouched"
    assert await renewals(stack) == [("zhaoli", {"feed": "user:zhaoli", "generation": 1})]

    await say(stack, "zhaoli", "/duty ical 更换 zhaoli")  # naming oneself needs no admin
    again = link_in(last_text(stack, "zhaoli"))
    assert again not in (mine, renewed)
    assert (await status_of(renewed), await status_of(again)) == (404, 200)

    await stack.restart_bot()  # the generation is kept in the database, not in the process
    assert (await status_of(again), await status_of(mine)) == (200, 404)
    assert await link_of(stack, "zhaoli") == again


async def test_only_an_admin_renews_the_units_or_another_members_link(feed_stack: Stack) -> None:
    stack = feed_stack
    theirs = await link_of(stack, "wangxm")
    unit = await link_of(stack, "chenfb", "全单位值班表")

    for target in ("全单位", "wangxm"):
        await say(stack, "zhaoli", f"/duty ical 重置 {target}")
        assert "只有管理员" in last_text(stack, "zhaoli")
    await say(stack, "zhaoli", "/duty ical 重置 全单位 现在")
    assert "用法" in last_text(stack, "zhaoli")
    await say(stack, "chenfb", "/duty ical 重置 nobody")
    assert "成员名单中没有“nobody”" in last_text(stack, "chenfb")
    assert (await status_of(theirs), await status_of(unit)) == (200, 200)
    assert await renewals(stack) == [], "a refused request changes nothing"

    received = len(texts(stack, "wangxm"))
    await say(stack, "chenfb", "/duty ical 重置 wangxm")
    told = last_text(stack, "chenfb")
    assert "已更换王小明的值班日历链接" in told and "/ical/" not in told, "the admin never sees it"
    (notice,) = texts(stack, "wangxm")[received:]
    assert "管理员陈发布更换了您的值班日历链接" in notice
    new_theirs = link_in(notice)
    assert (await status_of(theirs), await status_of(new_theirs)) == (404, 200)

    await say(stack, "chenfb", "/duty ical 重置 全单位")
    new_unit = link_in(last_text(stack, "chenfb"))
    assert (await status_of(unit), await status_of(new_unit)) == (404, 200)
    assert await link_of(stack, "chenfb", "全单位值班表") == new_unit
    assert await renewals(stack) == [
        ("chenfb", {"feed": "user:wangxm", "generation": 1}),
        ("chenfb", {"feed": "unit", "generation": 1}),
    ]


async def test_a_swapped_shift_moves_between_feeds_under_its_uid(sqlite_url: str) -> None:
    async with running_stack(feed_settings(sqlite_url), FrozenClock(START)) as stack:
        await at(stack, minutes=31)
        zhaoli, wangxm = await link_of(stack, "zhaoli"), await link_of(stack, "wangxm")
        (moved,) = [e for e in events(await feed(wangxm)) if e[1].date().isoformat() == "2026-11-24"]
        await say(stack, "wangxm", "/duty swap 2026-11-24 zhaoli")
        assert "已调班" in last_text(stack, "wangxm")
        assert moved[0] not in [e[0] for e in events(await feed(wangxm))]
        (taken,) = [e for e in events(await feed(zhaoli)) if e[0] == moved[0]]
        assert taken[1:] == (moved[1], moved[2], "值班：主班 赵丽")


async def test_a_feed_keeps_thirty_days_of_past_shifts(sqlite_url: str) -> None:
    async with running_stack(feed_settings(sqlite_url), FrozenClock(START)) as stack:
        await at(stack, minutes=31)
        url = await link_of(stack, "chenfb", "全单位值班表")
        # 12-24 09:00 local: the shift of 11-23 ended more than 30 days ago, that of 11-24 did not.
        await at(stack, days=31, minutes=29)
        now = stack.clock.now()
        kept = [s for s in await roster(stack) if s.end_at > now - timedelta(days=30)]
        calendar = await feed(url)
        assert events(calendar) == expected(kept, "127.0.0.1")
        starts = {e[1].date().isoformat() for e in events(calendar)}
        assert "2026-11-23" not in starts and "2026-11-24" in starts


async def test_an_unknown_or_revoked_link_is_a_plain_404(sqlite_url: str) -> None:
    async with running_stack(feed_settings(sqlite_url), FrozenClock(START)) as stack:
        await at(stack, minutes=31)
        url = await link_of(stack, "zhaoli")
        base, token = stack.bot_url, url.rsplit("/", 1)[1].removesuffix(".ics")
        missing = await fetch(f"{base}/no-such-page")
        for wrong in (
            f"{base}/ical/{'a' * 32}.ics",  # well formed, opens nothing
            f"{base}/ical/{token[:-1]}.ics",
            f"{base}/ical/{token.upper()}.ics",
            f"{base}/ical/{token}",
        ):
            status, _, body = await fetch(wrong)
            assert (status, body) == (404, missing[2]), wrong
        # A new session secret revokes every link.
        stack.settings = stack.settings.model_copy(
            update={"web": stack.settings.web.model_copy(update={"session_secret": "another-" + "y" * 32})}
        )
        await stack.restart_bot()
        status, _, body = await fetch(url)
        assert (status, body) == (404, missing[2])
        assert await link_of(stack, "zhaoli") != url


async def test_without_a_session_secret_there_are_no_feeds(sqlite_url: str) -> None:
    async with running_stack(stack_settings(sqlite_url, {"duty": DUTY}), FrozenClock(START)) as stack:
        await at(stack, minutes=31)
        await say(stack, "chenfb", "/duty ical")
        reply = last_text(stack, "chenfb")
        assert "未开通" in reply and "web.session_secret" in reply and "/ical/" not in reply
        status, _, _ = await fetch(f"{stack.bot_url}/ical/{'a' * 32}.ics")
        assert status == 404


async def test_the_token_is_never_logged(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_stack(feed_settings(sqlite_url), FrozenClock(START)) as stack:
        await at(stack, minutes=31)
        url = await link_of(stack, "chenfb", "全单位值班表")
        await feed(url)
        await fetch(url[:-8] + "aaaa.ics")
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    assert "chenfb" in caplog.text, "the run was logged"
    assert token not in caplog.text
    record = logging.LogRecord("aiohttp.access", logging.INFO, "", 0, "GET %s 200", (url,), None)
    RedactFilter().filter(record)
    assert token not in record.getMessage() and "/ical/***.ics" in record.getMessage()
