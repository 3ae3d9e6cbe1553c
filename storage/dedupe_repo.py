"""Dedupe keys of applied callbacks: the first insert wins, across instances."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import direct
from storage.models import ProcessedCallback
from storage.schema import table_of

# Every callback runs it: built once, run on the driver's connection (storage.direct).
_REMEMBER = direct.Direct(
    lambda dialect: (
        direct.dialect_insert(dialect, table_of(ProcessedCallback))
        .values(key=bindparam("new_key"), received_at=bindparam("at"))
        .on_conflict_do_nothing(index_elements=["key"])
    )
)


async def remember_callback(*, session: AsyncSession, key: str, at: datetime) -> bool:
    """Record `key`; True the first time, False when it was already applied."""
    return await direct.run(session, _REMEMBER, new_key=key, at=at) == 1


async def prune_callbacks(*, session: AsyncSession, before: datetime) -> int:
    """Forget keys older than `before` (WeCom stops re-sending within minutes)."""
    result = await session.exec(delete(ProcessedCallback).where(col(ProcessedCallback.received_at) < before))
    return int(result.rowcount or 0)
