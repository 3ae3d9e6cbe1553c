"""Local-time and working-day arithmetic for the schedules (法定节假日 and 调休 via chinese_calendar)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

from bot.core.config import CalendarSettings, Settings


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


def is_workday(day: date, calendar: CalendarSettings | None = None) -> bool:
    """A working day: Mon–Fri unless a 法定节假日, plus 调休 make-up Saturdays/Sundays. The unit's
    own [calendar] comes first; then chinese_calendar; outside the years either knows, weekdays
    count as working days (coverage_warning says so in time)."""
    if calendar is not None:
        if day in calendar.workday_days:
            return True
        if day in calendar.holiday_days:
            return False
        if day.year in calendar.years:
            return day.weekday() < 5
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def installed_years() -> range:
    """The years the installed chinese_calendar knows."""
    from chinese_calendar import constants

    years = [d.year for d in constants.holidays]
    return range(min(years), max(years) + 1)


def uncovered_years(calendar: CalendarSettings, today: date, *, ahead_days: int = 61) -> list[int]:
    """The years from `today` to `ahead_days` later whose 法定节假日 nobody has given: neither the
    installed data nor the unit's [calendar]."""
    known = set(installed_years()) | set(calendar.years)
    years = range(today.year, (today + timedelta(days=ahead_days)).year + 1)
    return [y for y in years if y not in known]


def coverage_warning(calendar: CalendarSettings, today: date) -> str:
    """The admins' warning while a year about to begin (or begun) has no holiday data, else ""."""
    missing = uncovered_years(calendar, today)
    if not missing:
        return ""
    years = "、".join(f"{y}年" for y in missing)
    return (
        f"【日历】{years}的法定节假日和调休尚未登记，工作日提醒和节假日排班暂按周一至周五计算。"
        "国务院办公厅公布后，请在配置 [calendar] 中登记 holidays 和 workdays（或升级 chinesecalendar）。"
    )


def working_time_between(
    start: datetime, end: datetime, tz: ZoneInfo, calendar: CalendarSettings | None = None
) -> timedelta:
    """How much of [start, end) falls on working days (local calendar days)."""
    if end <= start:
        return timedelta(0)
    total = timedelta(0)
    cursor = start
    while cursor < end:
        day = local_day(cursor, tz)
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(ZoneInfo("UTC"))
        stop = min(end, next_midnight)
        if is_workday(day, calendar):
            total += stop - cursor
        cursor = stop
    return total


def review_pending_time(entered: datetime, now: datetime, settings: Settings) -> timedelta:
    """How long a review stage reached at `entered` has waited at `now`, as 催办 counts it: the
    working-day time when `[reminders] workdays_only`, else the plain time."""
    if settings.reminders.workdays_only:
        return working_time_between(entered, now, settings.tz, settings.calendar)
    return max(now - entered, timedelta(0))


def add_working_time(
    start: datetime, amount: timedelta, tz: ZoneInfo, calendar: CalendarSettings | None = None
) -> datetime:
    """The moment `amount` of working-day time after `start` (the inverse of working_time_between:
    non-working local days are skipped whole)."""
    cursor, left = start, amount
    while True:
        day = local_day(cursor, tz)
        next_midnight = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(ZoneInfo("UTC"))
        if is_workday(day, calendar):
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
    return list(settings.staff_by_id.with_role(role))


WEEKDAYS = "一二三四五六日"


def fmt_local(moment: datetime, tz: ZoneInfo, pattern: str = "%m-%d %H:%M") -> str:
    """`moment` local to `tz` as `pattern`; %a is the Chinese weekday (周一…周日) in any locale."""
    local = moment.astimezone(tz)
    return local.strftime(pattern.replace("%a", "周" + WEEKDAYS[local.weekday()]))
