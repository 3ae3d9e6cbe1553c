"""Dedupe keys of applied callbacks: the first insert wins, across instances."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, bindparam, delete, func, true
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import direct
from storage.models import ProcessedCallback
from storage.schema import table_of


def _remember_all(dialect_name: str) -> Any:
    """INSERT of a list of keys, ON CONFLICT DO NOTHING, RETURNING the keys it inserted."""
    table = table_of(ProcessedCallback)
    if dialect_name == "postgresql":
        keys: Any = func.unnest(bindparam("keys", type_=ARRAY(String())))
        listed = core_select(keys, bindparam("at", type_=table.c.received_at.type))
    else:  # SQLite: the keys as a JSON array, one row each (WHERE: the grammar wants one before ON CONFLICT)
        each = func.json_each(bindparam("keys", type_=JSON())).table_valued("value")
        listed = core_select(each.c.value, bindparam("at", type_=table.c.received_at.type)).where(true())
    return (
        direct.dialect_insert(dialect_name, table)
        .from_select(["key", "received_at"], listed)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(table.c.key)
    )


# Every callback runs it: built once, run on the driver's connection (storage.direct).
_REMEMBER_ALL = direct.Direct(_remember_all)


async def remember_callbacks(*, session: AsyncSession, keys: Sequence[str], at: datetime) -> set[str]:
    """Record `keys` in one statement; those recorded now (not applied before), each once.
    In sorted order: two transactions holding some of the same keys (a re-send in another
    group) then wait for each other in one order, never in a deadlock."""
    ordered = sorted(set(keys))
    return {key for (key,) in await direct.rows(session, _REMEMBER_ALL, keys=ordered, at=at)}


async def remember_callback(*, session: AsyncSession, key: str, at: datetime) -> bool:
    """Record `key`; True the first time, False when it was already applied."""
    return key in await remember_callbacks(session=session, keys=[key], at=at)


async def prune_callbacks(*, session: AsyncSession, before: datetime) -> int:
    """Forget keys older than `before` (WeCom stops re-sending within minutes)."""
    result = await session.exec(delete(ProcessedCallback).where(col(ProcessedCallback.received_at) < before))
    return int(result.rowcount or 0)
