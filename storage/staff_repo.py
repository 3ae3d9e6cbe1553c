"""Staff rows, kept in step with the configuration at start-up."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import StaffMember
from storage.models import Staff


async def sync_staff(*, session: AsyncSession, members: Iterable[StaffMember]) -> None:
    """Upsert configured people; people no longer configured are kept but marked inactive."""
    configured = {m.userid: m for m in members}
    existing = {s.userid: s for s in (await session.exec(select(Staff))).all()}
    for userid, member in configured.items():
        row = existing.get(userid) or Staff(userid=userid, name=member.name)
        row.name = member.name
        row.roles = ",".join(member.roles)
        row.active = True
        session.add(row)
    for userid, row in existing.items():
        if userid not in configured and row.active:
            row.active = False
            session.add(row)
