"""Periods of the exports and reports: local calendar days, months, quarters and years as UTC
instants, with the label a form prints and the slug a file name carries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})$")
DAY_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
QUARTER_RE = re.compile(r"^(\d{4})\s*[Qq]([1-4])$")
YEAR_RE = re.compile(r"^(\d{4})(?:年)?$")
REPORT_PERIOD_TEXT = "2026Q4（季度）、2026（全年）或 2026-11（月份）"


class PeriodError(ValueError):
    """The period words could not be read (the message is Chinese, for the user)."""


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, from local calendar days; `label` is what the form prints."""

    start: datetime
    end: datetime
    label: str
    slug: str


def _day(text: str) -> date:
    match = DAY_RE.match(text)
    if not match:
        raise PeriodError(f"日期“{text}”应写成 YYYY-MM-DD")
    try:
        return date(*(int(p) for p in match.groups()))
    except ValueError:
        raise PeriodError(f"日期“{text}”不存在") from None


def parse_period(words: list[str], tz: ZoneInfo, today: date) -> Period:
    """No words: this month; 'YYYY-MM': that month; two dates: from the first to the second."""
    if not words:
        first = today.replace(day=1)
        return month_period(first.year, first.month, tz)
    if len(words) == 1:
        match = MONTH_RE.match(words[0])
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise PeriodError(f"月份“{words[0]}”应写成 YYYY-MM")
        return month_period(int(match.group(1)), int(match.group(2)), tz)
    if len(words) == 2:
        first, last = _day(words[0]), _day(words[1])
        if last < first:
            raise PeriodError("结束日期早于开始日期")
        if (last - first).days > 366:
            raise PeriodError("一次最多导出一年")
        return Period(
            _midnight(first, tz),
            _midnight(last + timedelta(days=1), tz),
            f"{first:%Y年%m月%d日}至{last:%Y年%m月%d日}",
            f"{first:%Y%m%d}-{last:%Y%m%d}",
        )
    raise PeriodError("时间段最多两个日期")


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return Period(
        _midnight(first, tz), _midnight(following, tz), f"{year}年{month:02d}月", f"{year}{month:02d}"
    )


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(ZoneInfo("UTC"))


def parse_report_period(word: str, tz: ZoneInfo, today: date) -> Period:
    """'2026Q4', '2026' or '2026-11'; nothing: the current quarter."""
    word = word.strip()
    if not word:
        return quarter_period(today.year, (today.month - 1) // 3 + 1, tz)
    if match := QUARTER_RE.match(word):
        return quarter_period(int(match.group(1)), int(match.group(2)), tz)
    if match := YEAR_RE.match(word):
        year = int(match.group(1))
        if not 2000 <= year <= 9998:
            raise PeriodError(f"年份“{word}”超出范围")
        start, end = month_period(year, 1, tz), month_period(year, 12, tz)
        return Period(start.start, end.end, f"{year}年", f"{year}")
    if (match := MONTH_RE.match(word)) and 1 <= int(match.group(2)) <= 12:
        return month_period(int(match.group(1)), int(match.group(2)), tz)
    raise PeriodError(f"时间“{word}”应写成 {REPORT_PERIOD_TEXT}")


def quarter_period(year: int, quarter: int, tz: ZoneInfo) -> Period:
    if not 2000 <= year <= 9998:
        raise PeriodError(f"年份“{year}”超出范围")
    first, last = month_period(year, 3 * quarter - 2, tz), month_period(year, 3 * quarter, tz)
    return Period(first.start, last.end, f"{year}年第{'一二三四'[quarter - 1]}季度", f"{year}Q{quarter}")
