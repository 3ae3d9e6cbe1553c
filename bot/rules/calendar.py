"""Local-time and working-day arithmetic for the schedules (法定节假日 and 调休 via chinese_calendar)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from bot.core.config import Settings


def parse_hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def local_at(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    """The UTC instant of `hhmm` local time on `day`."""
    return datetime.combine(day, parse_hhmm(hhmm), tz).astimezone(ZoneInfo("UTC"))


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant local `day` ends (the next day's 00:00): a deadline written as a last day."""
    return local_at(day + timedelta(days=1), "00:00", tz)


def last_day_of(end: datetime, tz: ZoneInfo) -> date:
    """The local day that ends at `end` (end_of_day's inverse): how a deadline is shown."""
    return local_day(end - timedelta(microseconds=1), tz)


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def is_workday(day: date) -> bool:
    """A working day: Mon–Fri unless a 法定节假日, plus 调休 make-up Saturdays/Sundays.

    Outside the years chinese_calendar knows, weekdays count as working days.
    """
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def working_time_between(start: datetime, end: datetime, tz: ZoneInfo) -> timedelta:
    """How much of [start, end) falls on working days (local calendar days)."""
    if end <= start:
        return timedelta(0)
    total = timedelta(0)
    cursor = start
    while cursor < end:
        day = local_day(cursor, tz)
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(ZoneInfo("UTC"))
        stop = min(end, next_midnight)
        if is_workday(day):
            total += stop - cursor
        cursor = stop
    return total


def add_working_time(start: datetime, amount: timedelta, tz: ZoneInfo) -> datetime:
    """The moment `amount` of working-day time after `start` (the inverse of working_time_between:
    non-working local days are skipped whole)."""
    cursor, left = start, amount
    while True:
        day = local_day(cursor, tz)
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(ZoneInfo("UTC"))
        if is_workday(day):
            if cursor + left <= next_midnight:
                return cursor + left
            left -= next_midnight - cursor
        cursor = next_midnight


def in_quiet_hours(moment: datetime, settings: Settings) -> bool:
    """Whether `moment` falls in the reminders' quiet window (which may span midnight)."""
    now = moment.astimezone(settings.tz).time()
    start = parse_hhmm(settings.reminders.quiet_start)
    end = parse_hhmm(settings.reminders.quiet_end)
    if start == end:
        return False
    if start < end:
        return start <= now < end
    return now >= start or now < end


def people_with_role(settings: Settings, role: str) -> list[str]:
    return [m.userid for m in settings.staff if role in m.roles]


WEEKDAYS = "一二三四五六日"


def fmt_local(moment: datetime, tz: ZoneInfo, pattern: str = "%m-%d %H:%M") -> str:
    """`moment` local to `tz` as `pattern`; %a is the Chinese weekday (周一…周日) in any locale."""
    local = moment.astimezone(tz)
    return local.strftime(pattern.replace("%a", "周" + WEEKDAYS[local.weekday()]))
