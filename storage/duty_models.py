"""Tables of the 24-hour duty watch: shifts, inspections, incidents and their timelines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.columns import json_column, utc_column


class Shift(SQLModel, table=True):
    """One person's shift in one role; rotation rows, imports and swaps all live here."""

    __table_args__ = (UniqueConstraint("role", "start_at", name="uq_shift_role_start"),)

    id: int | None = Field(default=None, primary_key=True)
    role: str = Field(max_length=16)  # primary 主班 | deputy 副班 | leader 带班领导
    userid: str = Field(max_length=64)
    start_at: datetime = utc_column(index=True)
    end_at: datetime = utc_column(index=True)
    source: str = Field(default="rotation", max_length=16)  # rotation | import | swap


class Inspection(SQLModel, table=True):
    """The 日常巡检 of one local day: sent to the person on duty, done or escalated."""

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(max_length=10, unique=True)  # YYYY-MM-DD, local
    userid: str = Field(max_length=64)
    task_id: str = Field(max_length=128, unique=True)
    sent_at: datetime = utc_column()
    due_at: datetime = utc_column(index=True)
    done_at: datetime | None = utc_column(nullable=True)
    done_by: str = Field(default="", max_length=64)
    # the newest AccountPost id whose page this 巡检 checked: the next one starts after it
    pages_through: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Incident(SQLModel, table=True):
    """An incident (突发) paged to the person on duty until acknowledged."""

    __table_args__ = (Index("ix_incident_due", "status", "next_page_at"),)

    id: int | None = Field(default=None, primary_key=True)
    content: str = Field(max_length=2000)
    raised_by: str = Field(max_length=64)
    raised_at: datetime = utc_column()
    status: str = Field(default="open", max_length=16)  # open | acked | resolved
    task_id: str = Field(default="", max_length=128)
    next_page_at: datetime | None = utc_column(nullable=True)
    acked_by: str = Field(default="", max_length=64)
    acked_at: datetime | None = utc_column(nullable=True)
    resolved_by: str = Field(default="", max_length=64)
    resolved_at: datetime | None = utc_column(nullable=True)
    escalated_at: datetime | None = utc_column(nullable=True)
    kind: str = Field(default="other", max_length=16, sa_column_kwargs={"server_default": "other"})
    summary: str = Field(
        default="", max_length=2000, sa_column_kwargs={"server_default": ""}
    )  # the closing one


class IncidentEvent(SQLModel, table=True):
    """The incident timeline: raised, paged (to whom), escalated, acknowledged, reported (to whom,
    how, by whom), actions taken (纠错, 删除, 回应, 处置), resolved, summarised."""

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime = utc_column()
    kind: str = Field(max_length=16)
    actor: str = Field(default="", max_length=64)
    details: dict[str, Any] = json_column()  # e.g. {"to": [userids]}


class InspectionFinding(SQLModel, table=True):
    """A problem found in the 日常巡检 (湛江 第十二条), and when it is given to someone with a
    deadline, its 整改 (问题交办、限期整改: 湛江 第十六条(一), 钦州 第二十八条) until closed."""

    id: int | None = Field(default=None, primary_key=True)
    day: str = Field(max_length=10, index=True)  # the local day of the 巡检 it was found in
    text: str = Field(max_length=500)
    found_by: str = Field(max_length=64)
    found_at: datetime = utc_column()
    assignee: str = Field(default="", max_length=64)  # "" = recorded only, nothing to rectify
    due_at: datetime | None = utc_column(nullable=True, index=True)
    fixed_at: datetime | None = utc_column(nullable=True)
    fixed_by: str = Field(default="", max_length=64)
    fix_note: str = Field(default="", max_length=500)


class ReadingTask(SQLModel, table=True):
    """One turn of 读网: who reads what in a period (a day or a week), and what they found."""

    id: int | None = Field(default=None, primary_key=True)
    period: str = Field(max_length=10, unique=True)  # the period's first local day, YYYY-MM-DD
    userid: str = Field(max_length=64)
    section: str = Field(max_length=100)
    task_id: str = Field(max_length=128, unique=True)
    sent_at: datetime = utc_column()
    due_at: datetime = utc_column(index=True)
    done_at: datetime | None = utc_column(nullable=True)
    outcome: str = Field(default="", max_length=16)  # "" open | ok | problem
    note: str = Field(default="", max_length=500)


class CalendarFeed(SQLModel, table=True):
    """A duty calendar feed whose link was changed (/duty ical 重置): its generation is part of the
    feed's token, so each change ends every earlier link of that feed alone. A feed without a
    row is at generation 0 (the links given before any change)."""

    subject: str = Field(primary_key=True, max_length=80)  # "unit" | "user:<userid>"
    generation: int = Field(ge=1)
    changed_at: datetime = utc_column()
    changed_by: str = Field(max_length=64)
