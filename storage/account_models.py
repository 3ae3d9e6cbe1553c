"""Tables of the 14x24-hour update rule and of what follows publishing: new-media accounts, their
posts, pauses, and the re-check of each published draft."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from storage.columns import json_column, utc_column


class Account(SQLModel, table=True):
    """A 政务新媒体 account or website column that must post within its period."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    platform: str = Field(default="", max_length=32)
    unit: str = Field(default="", max_length=100)
    owners: str = Field(default="", max_length=500)  # "a|b": the responsible userids
    period_hours: int | None = None  # None: the configured default (336)
    status: str = Field(default="active", max_length=16)  # active | paused | closed (注销)
    last_post_at: datetime | None = utc_column(nullable=True)
    # whether the newest post went through review here (/published); /posted gives a reason instead
    last_post_reviewed: bool = Field(default=True, sa_column_kwargs={"server_default": "1"})
    # the clock's start (the last post, else registration; a pause's end if later) + period; indexed
    # so a sweep reads only accounts close to it
    deadline_at: datetime | None = utc_column(nullable=True, index=True)
    created_at: datetime = utc_column()
    # a 临时下线 (钦州 第二十六条): paused until this instant, why; the clock restarts at its end
    paused_until: datetime | None = utc_column(nullable=True)
    pause_reason: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})
    resumed_at: datetime | None = utc_column(nullable=True)
    closed_at: datetime | None = utc_column(nullable=True)  # 注销: when it left the rule for good

    @property
    def owner_list(self) -> list[str]:
        return [u for u in self.owners.split("|") if u]


class AccountPost(SQLModel, table=True):
    """One recorded update of an account (from /published, /posted or an import)."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    posted_at: datetime = utc_column()
    draft_id: int | None = None
    url: str = Field(default="", max_length=500)
    recorded_by: str = Field(max_length=64)
    recorded_at: datetime = utc_column()
    # non-empty: the post did not go through review here (/posted), and this is why
    unreviewed_reason: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})
    # a retracted draft's post: when its publisher confirmed it was taken down (撤稿), and who
    taken_down_at: datetime | None = utc_column(nullable=True)
    taken_down_by: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})


class AccountPause(SQLModel, table=True):
    """One 临时下线 of an account: at most pause_max_days long, pauses_per_year a calendar year."""

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    started_at: datetime = utc_column()
    until: datetime = utc_column()
    reason: str = Field(max_length=200)
    started_by: str = Field(max_length=64)
    ended_at: datetime | None = utc_column(nullable=True)  # early (/accounts resume) or at `until`


class Recheck(SQLModel, table=True):
    """发布后复核: a published draft read again where it went out, by the people configured
    (review.recheck_by), confirmed 无误 or found wanting, before `due_at`."""

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="accountpost.id", unique=True)
    draft_id: int = Field(foreign_key="draft.id", index=True)
    version: int
    account: str = Field(max_length=100)
    url: str = Field(default="", max_length=500)
    assignees: str = Field(max_length=500)  # "a|b": any one of them decides
    task_id: str = Field(max_length=128, unique=True)
    created_at: datetime = utc_column()
    due_at: datetime = utc_column(index=True)
    done_at: datetime | None = utc_column(nullable=True)
    done_by: str = Field(default="", max_length=64)
    outcome: str = Field(default="", max_length=16)  # "" open | ok | problem
    note: str = Field(default="", max_length=500)  # what was wrong (outcome problem)

    @property
    def assignee_list(self) -> list[str]:
        return [u for u in self.assignees.split("|") if u]


REQUEST_KIND_LABELS = {"open": "开设", "change": "变更", "close": "注销"}
CHANGE_FIELD_LABELS = {"owners": "负责人", "name": "名称", "platform": "平台"}  # what a 变更 may change


class AccountRequest(SQLModel, table=True):
    """开设, 变更 or 注销 of an account (钦州 第二十五、二十六条): approved step by step by the configured
    roles, applied on the last approval, then filed with the 主管单位 within the working days set."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=8)  # open | change | close
    account: str = Field(max_length=100)  # the account's name (for 开设, the new account's)
    # what is asked: {"platform", "owners"} to open; {"field", "value"} to change
    details: dict[str, Any] = json_column()
    reason: str = Field(max_length=200)
    requested_by: str = Field(max_length=64)
    requested_at: datetime = utc_column()
    status: str = Field(default="pending", max_length=12)  # pending | approved | rejected
    step: int = 0  # the index of the approval step now waiting
    # [{"step", "role", "userid", "decision", "opinion", "at"}], in order
    decisions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    decided_at: datetime | None = utc_column(nullable=True)
    filing_due_at: datetime | None = utc_column(nullable=True, index=True)
    filed_at: datetime | None = utc_column(nullable=True)
    filed_by: str = Field(default="", max_length=64)
    filing_note: str = Field(default="", max_length=200)
