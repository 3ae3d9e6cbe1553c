"""智能识错 records: people's marks on findings, and the terms learned from 误报 marks."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import FindingMark, LearnedAllow


async def marks_of(*, session: AsyncSession, draft_id: int, version: int, userid: str) -> dict[int, str]:
    """finding number → this person's mark, on one version."""
    rows = await session.exec(
        select(FindingMark.number, FindingMark.mark).where(
            FindingMark.draft_id == draft_id, FindingMark.version == version, FindingMark.userid == userid
        )
    )
    return dict(rows.all())


async def set_mark(
    *, session: AsyncSession, draft_id: int, version: int, number: int, userid: str, mark: str, at: datetime
) -> str:
    """Record (or replace) a person's mark; returns the mark it replaced ("" if none)."""
    existing = (
        await session.exec(
            select(FindingMark).where(
                FindingMark.draft_id == draft_id,
                FindingMark.version == version,
                FindingMark.number == number,
                FindingMark.userid == userid,
            )
        )
    ).first()
    if existing is None:
        session.add(
            FindingMark(draft_id=draft_id, version=version, number=number, userid=userid, mark=mark, at=at)
        )
        return ""
    before = existing.mark
    existing.mark, existing.at = mark, at
    session.add(existing)
    return before


async def learned_terms(*, session: AsyncSession) -> frozenset[str]:
    """Every term a reviewer marked 误报 (never flagged again)."""
    return frozenset((await session.exec(select(LearnedAllow.term).order_by(col(LearnedAllow.term)))).all())


async def learn(
    *, session: AsyncSession, term: str, kind: str, draft_id: int, userid: str, at: datetime
) -> bool:
    """Add `term` to the learned allow-list; False if it was there already."""
    if await session.get(LearnedAllow, term) is not None:
        return False
    session.add(LearnedAllow(term=term, kind=kind, draft_id=draft_id, userid=userid, at=at))
    return True
