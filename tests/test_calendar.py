"""The working-day calendar past the installed holiday data: the unit's own [calendar] (法定节假日
and 调休, inline or in a file) takes precedence, and the admins are warned in time — at start and
once a week — while a year about to begin has no holiday data."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.cli.stack import running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.core.config import CalendarSettings, ConfigError, load_settings
from bot.rules.calendar import (
    add_working_time,
    coverage_warning,
    installed_years,
    is_workday,
    uncovered_years,
)
from tests.flow import at, count, texts
from tests.test_export import write_config

TZ = ZoneInfo("Asia/Shanghai")
SPRING_2027 = CalendarSettings(
    holidays=("2027-01-01", "2027-02-15..2027-02-19"), workdays=("2027-02-14", "2027-02-20")
)


def test_the_units_calendar_comes_before_the_installed_data_and_the_weekday_guess() -> None:
    assert max(installed_years()) == 2026, "the data this test assumes runs out with 2026"
    assert is_workday(date(2027, 2, 15)), "without data: a Monday is a working day"
    assert not is_workday(date(2027, 2, 15), SPRING_2027), "listed as 春节 holiday"
    assert is_workday(date(2027, 2, 14), SPRING_2027), "a Sunday worked (调休)"
    assert not is_workday(date(2027, 2, 21), SPRING_2027), "an ordinary Sunday"
    assert is_workday(date(2027, 2, 22), SPRING_2027) and not is_workday(date(2027, 1, 1), SPRING_2027)
    assert not is_workday(date(2026, 10, 1), SPRING_2027), "2026 still from the installed data"
    # two working hours from Friday 2027-02-12 23:00 land on Sunday the 14th (调休), 01:00
    friday_late = datetime(2027, 2, 12, 23, 0, tzinfo=TZ)
    assert add_working_time(friday_late, timedelta(hours=2), TZ, SPRING_2027) == datetime(
        2027, 2, 14, 1, 0, tzinfo=TZ
    )
    # …and without it on Monday the 15th, a holiday in fact
    assert add_working_time(friday_late, timedelta(hours=2), TZ) == datetime(2027, 2, 15, 1, 0, tzinfo=TZ)


def test_a_year_without_holiday_data_is_noticed_two_months_ahead() -> None:
    empty = CalendarSettings()
    assert uncovered_years(empty, date(2026, 10, 31)) == []
    assert uncovered_years(empty, date(2026, 11, 1)) == [2027]
    assert uncovered_years(empty, date(2027, 3, 1)) == [2027], "and after it has begun"
    assert uncovered_years(SPRING_2027, date(2026, 12, 3)) == []
    assert "2027年的法定节假日和调休尚未登记" in coverage_warning(empty, date(2026, 12, 3))
    assert coverage_warning(SPRING_2027, date(2026, 12, 3)) == ""


async def test_admins_are_warned_once_a_week_until_the_year_is_listed(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    start = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)  # Thursday 08:00 in Shanghai
    async with running_stack(stack_settings(sqlite_url), FrozenClock(start)) as stack:
        assert any("no 法定节假日 data for 2027" in r.getMessage() for r in caplog.records)
        await at(stack, minutes=19)
        assert count(stack, "chenfb", "【日历】") == 0, "not before the digest time (08:20)"
        await at(stack, minutes=1)
        assert count(stack, "chenfb", "【日历】2027年的法定节假日和调休尚未登记") == 1
        assert count(stack, "liuzr", "【日历】") == 0, "the admins only"
        await at(stack, days=3)  # Sunday: the same week
        assert count(stack, "chenfb", "【日历】") == 1
        await at(stack, days=1)  # Monday: a new week
        assert count(stack, "chenfb", "【日历】") == 2
    listed = stack_settings(sqlite_url, {"calendar": {"holidays": ["2027-01-01"]}})
    async with running_stack(listed, FrozenClock(start + timedelta(days=14))) as stack:
        await at(stack, hours=1)
        assert not [t for t in texts(stack, "chenfb") if t.startswith("【日历】")]


def test_the_calendar_file_is_read_with_the_config_and_checked(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path}/s.db")
    (tmp_path / "holidays-2027.toml").write_text(
        'holidays = ["2027-01-01", "2027-02-15..2027-02-19"]\nworkdays = ["2027-02-14"]\n', encoding="utf-8"
    )
    base = config.read_text(encoding="utf-8")
    assert "\n[calendar]\n" in base
    config.write_text(
        base.replace(
            "\n[calendar]\n", '\n[calendar]\nfile = "holidays-2027.toml"\nholidays = ["2027-05-03"]\n'
        ),
        encoding="utf-8",
    )
    calendar = load_settings(config, env={}).calendar
    assert date(2027, 2, 17) in calendar.holiday_days and date(2027, 5, 3) in calendar.holiday_days
    assert calendar.workday_days == {date(2027, 2, 14)}

    cases = [
        ('holidays = ["2027-2-15"]\n', "calendar.holidays: “2027-2-15”应写成 YYYY-MM-DD"),
        ('holidays = ["2027-02-19..2027-02-15"]\n', "起止日期有误"),
        ('holidays = ["2027-01-01"]\nworkdays = ["2027-01-01"]\n', "2027-01-01 同时列为节假日和调休上班日"),
        ('holiday = ["2027-01-01"]\n', "只能有 holidays 和 workdays"),
        ('holidays = "2027-01-01"\n', "应为日期字符串列表"),
    ]
    for text, reason in cases:
        (tmp_path / "holidays-2027.toml").write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=reason):
            load_settings(config, env={})
    (tmp_path / "holidays-2027.toml").unlink()
    with pytest.raises(ConfigError, match="calendar.file: .*holidays-2027.toml 不存在"):
        load_settings(config, env={})
