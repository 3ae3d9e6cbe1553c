"""The duty roster as iCalendar feeds for phone calendars: the secret feed tokens, their links and the .ics."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from icalendar import Calendar, Event, Timezone, vDuration
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import Settings
from bot.core.errors import UserFacingError
from bot.services.scope import Scope, is_admin
from storage import duty_repo
from storage.audit_repo import append_audit
from storage.duty_models import Shift

FEED_PATH = "/ical/{token}.ics"
TOKEN_PATTERN = "[a-z2-7]{32}"  # 20 bytes of HMAC-SHA256 in lowercase base32: 160 bits
PAST_DAYS = 30  # a feed holds the shifts of the last 30 days and every shift planned after them
REFRESH = timedelta(hours=1)  # how often calendar apps are asked to fetch again
CACHE_SECONDS = 900
_DOMAIN = b"sanshen duty calendar feed v1\x00"  # keeps these MACs apart from any other use of the secret


@dataclass(frozen=True)
class Feed:
    """One feed: a person's own shifts, or (userid None) the whole unit's roster."""

    userid: str | None = None

    @property
    def subject(self) -> str:
        """Its name in the token and in the table of changed feeds (storage CalendarFeed)."""
        return "unit" if self.userid is None else "user:" + self.userid


UNIT_FEED = Feed()
UNIT_WORDS = ("全单位", "单位", "unit")  # /duty ical 重置 全单位: the unit's feed
RENEW_WORDS = ("重置", "更换", "reset")


def feeds_enabled(settings: Settings) -> bool:
    """Feeds need a fixed secret (a random per-start one would break every link at each restart)
    and the public address the links point to."""
    return bool(settings.web.session_secret and settings.server.public_url)


def feed_token(settings: Settings, feed: Feed, generation: int = 0) -> str:
    """The feed's secret token: an HMAC of its subject and generation under `[web] session_secret`.
    Renewing one feed (a new generation) ends its earlier links alone; a new secret ends all."""
    if not settings.web.session_secret:
        raise ValueError("web.session_secret is empty: no calendar feed tokens")
    subject = feed.subject.encode("utf-8")
    if generation:  # generation 0 keeps the tokens given before feeds could be renewed
        subject += b"\x00generation %d" % generation
    mac = hmac.new(settings.web.session_secret.encode("utf-8"), _DOMAIN + subject, hashlib.sha256)
    return base64.b32encode(mac.digest()[:20]).decode("ascii").lower()


def feed_for_token(settings: Settings, token: str, generations: Mapping[str, int]) -> Feed | None:
    """The feed a token opens, or None: the unit's or a person still on [[staff]] (a former
    member's link stops working), at its current generation (`duty_repo.feed_generations`: an
    earlier link of a renewed feed opens nothing). Every candidate is compared in constant time."""
    if not settings.web.session_secret:
        return None
    sent = token.encode("ascii", "replace")
    found = None
    for feed in (UNIT_FEED, *(Feed(m.userid) for m in settings.staff)):
        expected = feed_token(settings, feed, generations.get(feed.subject, 0))
        if hmac.compare_digest(expected.encode("ascii"), sent):
            found = feed
    return found


def feed_link(settings: Settings, feed: Feed, generations: Mapping[str, int]) -> str:
    """The https address a calendar app subscribes to, at the feed's current generation."""
    token = feed_token(settings, feed, generations.get(feed.subject, 0))
    return settings.server.public_url + FEED_PATH.format(token=token)


DISABLED_TEXT = (
    "值班日历订阅未开通：需要管理员设置 web.session_secret（环境变量 SANSHEN_WEB_SESSION_SECRET）"
    "和 server.public_url。"
)
HOW_TO_ADD = (
    "添加：iPhone 设置→日历→账户→添加账户→其他→添加已订阅的日历；安卓或 Outlook 在日历中选"
    "“添加日历→从网址/订阅”，粘贴链接。"
)


async def links_message(scope: Scope) -> str:
    """The asker's own feed link, and for an admin the unit's, with how to subscribe; it goes to
    the asker only (the links are secrets)."""
    if not feeds_enabled(scope.settings):
        return DISABLED_TEXT
    generations = await duty_repo.feed_generations(scope.session)
    lines = [
        "【值班日历订阅】以下链接只发给您本人，相当于密码，请勿转发。",
        f"我的值班：{feed_link(scope.settings, Feed(scope.user), generations)}",
    ]
    if is_admin(scope):
        lines.append(f"全单位值班表：{feed_link(scope.settings, UNIT_FEED, generations)}")
    lines += [
        HOW_TO_ADD,
        "日历约每小时更新一次，以 /duty 为准。链接外泄请发送 /duty ical 重置 更换（旧链接随即失效）。",
    ]
    return "\n".join(lines)


async def renew_link(scope: Scope, target: str | None) -> str:
    """/duty ical 重置 [全单位|userid]: end a feed's links and give its new one to whoever it
    belongs to — one's own, or (admins) the unit's or a member's, whose new link goes to that
    member alone. Recorded in the audit log; the answer for the asker."""
    if not feeds_enabled(scope.settings):
        return DISABLED_TEXT
    if target is None or target == scope.user:
        feed = Feed(scope.user)
    elif not is_admin(scope):
        raise UserFacingError("只有管理员可以更换全单位或他人的日历订阅链接；更换自己的：/duty ical 重置")
    elif target in UNIT_WORDS:
        feed = UNIT_FEED
    elif target in scope.staff:
        feed = Feed(target)
    else:
        raise UserFacingError(f"成员名单中没有“{target}”（请写 userid），或写“全单位”。")
    generation = await duty_repo.renew_feed(scope.session, feed.subject, by=scope.user, at=scope.now())
    await append_audit(
        session=scope.session,
        at=scope.now(),
        actor=scope.user,
        action="duty_feed_renewed",
        details={"feed": feed.subject, "generation": generation},
    )
    link = feed_link(scope.settings, feed, {feed.subject: generation})
    renewed = "旧链接已失效，请在日历中删除旧订阅，用新链接重新添加。新链接相当于密码，请勿转发。"
    if feed.userid == scope.user:
        return f"【值班日历订阅】已更换您的链接。{renewed}\n我的值班：{link}\n{HOW_TO_ADD}"
    if feed.userid is None:
        return (
            f"【值班日历订阅】已更换全单位值班表的链接。{renewed}\n全单位值班表：{link}\n"
            "其他管理员发送 /duty ical 可取得新链接。"
        )
    scope.outbox.send_text(
        [feed.userid],
        f"【值班日历订阅】管理员{scope.name_of(scope.user)}更换了您的值班日历链接。{renewed}\n"
        f"我的值班：{link}\n{HOW_TO_ADD}",
    )
    return f"已更换{scope.name_of(feed.userid)}的值班日历链接，旧链接已失效；新链接已单独发给本人。"


def feed_name(settings: Settings, feed: Feed) -> str:
    if feed.userid is None:
        return f"{settings.unit_name} 值班表"
    return f"{settings.name_of(feed.userid)}的值班"


async def feed_ics(session: AsyncSession, settings: Settings, feed: Feed, now: datetime) -> bytes:
    """The feed's calendar at `now`: shifts from PAST_DAYS ago on."""
    shifts = await duty_repo.shifts_from(session, now - timedelta(days=PAST_DAYS))
    return roster_calendar(settings, feed, shifts, now).to_ical()


def roster_calendar(settings: Settings, feed: Feed, shifts: Sequence[Shift], now: datetime) -> Calendar:
    """One VEVENT per shift of the feed (all of them, or the person's), in the unit's time zone;
    each names the whole crew of its shift. A shift's UID is fixed by its row, so a swap updates
    the event and a fetch never duplicates one."""
    tz = settings.tz
    host = urlsplit(settings.server.public_url).hostname or "sanshen"
    calendar = Calendar()
    calendar.add("prodid", "-//sanshen//审校助手 值班表//ZH")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", feed_name(settings, feed))
    calendar.add("x-wr-timezone", settings.timezone)
    calendar.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH).to_ical().decode())  # Outlook's name for it
    first_day = (now - timedelta(days=PAST_DAYS) - duty_repo.LONGEST_SHIFT).astimezone(tz).date()
    calendar.add_component(Timezone.from_tzid(settings.timezone, first_date=first_day))
    ordered = sorted(shifts, key=lambda s: (s.start_at, role_rank(s)))
    crews: dict[datetime, list[Shift]] = {}
    for shift in ordered:
        crews.setdefault(shift.start_at, []).append(shift)
    for shift in ordered:
        if feed.userid is not None and shift.userid != feed.userid:
            continue
        label = duty_repo.ROLE_LABELS.get(shift.role, shift.role)
        event = Event()
        event.add("uid", f"duty-shift-{shift.id}@{host}")
        event.add("dtstamp", now.astimezone(UTC))
        event.add("dtstart", shift.start_at.astimezone(tz))
        event.add("dtend", shift.end_at.astimezone(tz))
        event.add("summary", f"值班：{label} {settings.name_of(shift.userid)}")
        event.add("description", f"本班：{crew_line(settings, crews[shift.start_at])}")
        event.add("transp", "TRANSPARENT")  # on duty is not busy: the shift does not block the day
        calendar.add_component(event)
    return calendar


def role_rank(shift: Shift) -> int:
    """主班, 副班, 带班领导: the order the roster lists a shift's people in."""
    return duty_repo.ROLES.index(shift.role) if shift.role in duty_repo.ROLES else len(duty_repo.ROLES)


def crew_line(settings: Settings, crew: Sequence[Shift]) -> str:
    """「主班 赵丽，带班领导 刘主任」: a shift's people as the roster shows them."""
    return "，".join(
        f"{duty_repo.ROLE_LABELS.get(s.role, s.role)} {settings.name_of(s.userid)}" for s in crew
    )
