"""Exactly-once occasions: a unique row per (kind, subject, occasion), first insert wins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Occasion


async def claim_occasion(
    *, session: AsyncSession, kind: str, subject: str, occasion: str, at: datetime, by: str = ""
) -> bool:
    """True if this transaction claimed the occasion; False if anyone ever did before.

    On PostgreSQL a concurrent claimer blocks on the unique index until the first
    transaction ends, then sees the conflict; on SQLite writers are serialised already.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Occasion)
        .values(kind=kind, subject=subject, occasion=occasion, claimed_at=at, claimed_by=by)
        .on_conflict_do_nothing(index_elements=["kind", "subject", "occasion"])
    )
    result = await session.exec(statement)
    return bool(result.rowcount == 1)


async def was_claimed(*, session: AsyncSession, kind: str, subject: str, occasion: str) -> bool:
    row = await session.exec(
        select(Occasion.id).where(
            Occasion.kind == kind, Occasion.subject == subject, Occasion.occasion == occasion
        )
    )
    return row.first() is not None
