"""Duty rosters in the database: materialising the rotation, imports, swaps, who is on duty, the
hours nobody covers, and the incidents still being handled."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import Settings
from bot.rules.calendar import is_workday, local_at
from storage.duty_models import CalendarFeed, Incident, Shift

ROLES = ("primary", "deputy", "leader")
ROLE_LABELS = {"primary": "主班", "deputy": "副班", "leader": "带班领导"}
IMPORT_COLUMNS = {"主班": "primary", "副班": "deputy", "带班领导": "leader"}


# No shift is longer than this (config caps duty.shift_hours at it): interval queries bound
# start_at from below with it, so they read an index range, not every past shift.
LONGEST_SHIFT = timedelta(hours=168)


@dataclass(frozen=True)
class PlannedShift:
    role: str
    userid: str
    start_at: datetime
    end_at: datetime
    source: str = "rotation"


def shift_bounds(settings: Settings, day: date) -> tuple[datetime, datetime] | None:
    """The shift that starts on local `day` (None when the rotation has no shift starting then)."""
    duty = settings.duty
    if duty.rotation_start is None:
        return None
    start = local_at(day, duty.handover_time, settings.tz)
    origin = local_at(duty.rotation_start, duty.handover_time, settings.tz)
    length = timedelta(hours=duty.shift_hours)
    offset = start - origin
    if offset < timedelta(0) or offset % length:
        return None
    return start, start + length


def rotation_for(settings: Settings, day: date) -> list[PlannedShift]:
    """Who the rotation puts on duty for shifts starting on `day`, per role.

    Shift n (counted from rotation_start) goes to person n of each role's order, wrapping;
    on days that are not working days (法定节假日, weekends that are not 调休) the
    holiday_rotation replaces the 主班 order when one is configured.
    """
    duty = settings.duty
    if not duty.rotation or duty.rotation_start is None:
        return []
    planned: list[PlannedShift] = []
    length = timedelta(hours=duty.shift_hours)
    origin = local_at(duty.rotation_start, duty.handover_time, settings.tz)
    first = local_at(day, duty.handover_time, settings.tz)
    starts = [first + length * k for k in range(max(1, 24 // duty.shift_hours))]
    for start in starts:
        if start < origin or (start - origin) % length:
            continue
        number = (start - origin) // length
        primary = duty.rotation
        if duty.holiday_rotation and not is_workday(start.astimezone(settings.tz).date(), settings.calendar):
            primary = duty.holiday_rotation
        for role, order in (
            ("primary", primary),
            ("deputy", duty.deputy_rotation),
            ("leader", duty.leader_rotation),
        ):
            if order:
                planned.append(PlannedShift(role, order[number % len(order)], start, start + length))
    return planned


async def materialise(session: AsyncSession, shifts: Iterable[PlannedShift]) -> int:
    """Insert planned shifts that are not there yet (imports and swaps are never overwritten)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    added = 0
    for shift in shifts:
        statement = (
            insert(Shift)
            .values(
                role=shift.role,
                userid=shift.userid,
                start_at=shift.start_at,
                end_at=shift.end_at,
                source=shift.source,
            )
            .on_conflict_do_nothing(index_elements=["role", "start_at"])
        )
        result = await session.exec(statement)
        added += int(result.rowcount or 0)
    return added


async def upsert_shift(session: AsyncSession, shift: PlannedShift) -> None:
    """Set who holds a role's shift (import or swap), replacing the rotation's choice."""
    existing = (
        await session.exec(select(Shift).where(Shift.role == shift.role, Shift.start_at == shift.start_at))
    ).first()
    if existing is None:
        session.add(
            Shift(
                role=shift.role,
                userid=shift.userid,
                start_at=shift.start_at,
                end_at=shift.end_at,
                source=shift.source,
            )
        )
    else:
        existing.userid, existing.end_at, existing.source = shift.userid, shift.end_at, shift.source
        session.add(existing)
    await session.flush()


async def on_duty_at(session: AsyncSession, at: datetime) -> list[Shift]:
    """The shifts covering `at`, 主班 first."""
    rows = await session.exec(
        select(Shift)
        .where(Shift.start_at <= at, Shift.start_at > at - LONGEST_SHIFT, Shift.end_at > at)
        .order_by(col(Shift.start_at))
    )
    shifts = list(rows.all())
    return sorted(shifts, key=lambda s: ROLES.index(s.role) if s.role in ROLES else 9)


async def shifts_between(session: AsyncSession, start: datetime, end: datetime) -> list[Shift]:
    rows = await session.exec(
        select(Shift)
        .where(Shift.start_at < end, Shift.start_at > start - LONGEST_SHIFT, Shift.end_at > start)
        .order_by(col(Shift.start_at), col(Shift.role))
    )
    return list(rows.all())


async def shifts_from(session: AsyncSession, start: datetime) -> list[Shift]:
    """Every shift still running at `start` or later: the roster from then on, as far as it is planned."""
    rows = await session.exec(
        select(Shift)
        .where(Shift.start_at > start - LONGEST_SHIFT, Shift.end_at > start)
        .order_by(col(Shift.start_at), col(Shift.role))
    )
    return list(rows.all())


def uncovered(
    start: datetime, end: datetime, shifts: Iterable[Shift | PlannedShift]
) -> list[tuple[datetime, datetime]]:
    """Maximal stretches of [start, end) that no shift covers, at hour granularity (a stretch
    shorter than an hour is not a gap)."""
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for shift in sorted(shifts, key=lambda s: s.start_at):
        if shift.end_at <= cursor:
            continue
        if shift.start_at > cursor:
            gaps.append((cursor, min(shift.start_at, end)))
        cursor = max(cursor, shift.end_at)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(a, b) for a, b in gaps if b - a >= timedelta(hours=1)]


async def unresolved_incidents(session: AsyncSession) -> list[Incident]:
    """Incidents not yet 已处置 (waiting for 收到, or acknowledged and being handled), oldest first."""
    rows = await session.exec(
        select(Incident).where(col(Incident.status) != "resolved").order_by(col(Incident.raised_at))
    )
    return list(rows.all())


class RosterError(ValueError):
    """A roster file line could not be read (Chinese message naming the line)."""


def read_roster(path: Path, settings: Settings) -> list[PlannedShift]:
    """A CSV or xlsx roster: columns 日期 (YYYY-MM-DD), 主班, 副班, 带班领导 (userids)."""
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(path, read_only=True).active
        if sheet is None:
            raise RosterError("排班表中没有工作表")
        table = [
            [
                ("" if v is None else (v.date().isoformat() if isinstance(v, datetime) else str(v)))
                for v in row
            ]
            for row in sheet.iter_rows(values_only=True)
        ]
    else:
        table = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    return parse_roster(table, settings)


def parse_roster(table: Sequence[Sequence[str]], settings: Settings) -> list[PlannedShift]:
    if not table:
        return []
    header = [h.strip() for h in table[0]]
    if "日期" not in header:
        raise RosterError("排班表缺少“日期”列")
    unknown = [h for h in header if h and h != "日期" and h not in IMPORT_COLUMNS]
    if unknown:
        raise RosterError(
            f"排班表第 1 行：不认识的列“{unknown[0]}”，可用的列：日期、{'、'.join(IMPORT_COLUMNS)}"
        )
    if not any(h in IMPORT_COLUMNS for h in header):
        raise RosterError(f"排班表第 1 行：至少需要 {'、'.join(IMPORT_COLUMNS)} 中的一列")
    length = timedelta(hours=settings.duty.shift_hours)
    planned: list[PlannedShift] = []
    for number, row in enumerate(table[1:], start=2):
        cells = dict(zip(header, (c.strip() for c in row), strict=False))
        if not any(cells.values()):
            continue
        try:
            day = date.fromisoformat(cells["日期"])
        except ValueError:
            raise RosterError(f"排班表第 {number} 行：日期“{cells['日期']}”应写成 YYYY-MM-DD") from None
        start = local_at(day, settings.duty.handover_time, settings.tz)
        for column, role in IMPORT_COLUMNS.items():
            given = cells.get(column, "")
            if not given:
                continue
            userid = settings.userid_for(given)
            if userid is None:
                raise RosterError(f"排班表第 {number} 行：{column} {given} 不在人员名单中")
            planned.append(PlannedShift(role, userid, start, start + length, "import"))
    return planned


async def feed_generations(session: AsyncSession) -> dict[str, int]:
    """Each changed calendar feed's generation, by subject ("unit", "user:<userid>"); a feed not
    listed is at generation 0."""
    return {row.subject: row.generation for row in (await session.exec(select(CalendarFeed))).all()}


async def renew_feed(session: AsyncSession, subject: str, *, by: str, at: datetime) -> int:
    """Move a calendar feed to its next generation (ending its earlier links) and return it: one
    upsert, so two changes at once give two generations, never one twice."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(CalendarFeed).values(subject=subject, generation=1, changed_at=at, changed_by=by)
    statement = statement.on_conflict_do_update(
        index_elements=["subject"],
        set_={"generation": col(CalendarFeed.generation) + 1, "changed_at": at, "changed_by": by},
    )
    result = await session.exec(statement.returning(col(CalendarFeed.generation)))
    return int(result.scalar_one())
