"""Dedupe keys of applied callbacks: the first insert wins, across instances."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ProcessedCallback
from storage.schema import table_of

# Built once (every callback runs it); the values come in as parameters.
_REMEMBER = {
    postgres: insert(table_of(ProcessedCallback))
    .values(key=bindparam("new_key"), received_at=bindparam("at"))
    .on_conflict_do_nothing(index_elements=["key"])
    for postgres, insert in ((False, sqlite_insert), (True, pg_insert))
}


async def remember_callback(*, session: AsyncSession, key: str, at: datetime) -> bool:
    """Record `key`; True the first time, False when it was already applied."""
    statement = _REMEMBER[session.get_bind().dialect.name == "postgresql"]
    result = await session.exec(statement, params={"new_key": key, "at": at})
    return bool(result.rowcount == 1)


async def prune_callbacks(*, session: AsyncSession, before: datetime) -> int:
    """Forget keys older than `before` (WeCom stops re-sending within minutes)."""
    result = await session.exec(delete(ProcessedCallback).where(col(ProcessedCallback.received_at) < before))
    return int(result.rowcount or 0)
