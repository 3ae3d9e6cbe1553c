"""Tables of the 14x24-hour update rule: new-media accounts and their posts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from storage.columns import utc_column


class Account(SQLModel, table=True):
    """A 政务新媒体 account or website column that must post within its period."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    platform: str = Field(default="", max_length=32)
    unit: str = Field(default="", max_length=100)
    owners: str = Field(default="", max_length=500)  # "a|b": the responsible userids
    period_hours: int | None = None  # None: the configured default (336)
    status: str = Field(default="active", max_length=16)  # active | paused | closed
    last_post_at: datetime | None = utc_column(nullable=True)
    # last_post_at + period; indexed so a sweep reads only accounts close to it.
    deadline_at: datetime | None = utc_column(nullable=True, index=True)
    created_at: datetime = utc_column()

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
