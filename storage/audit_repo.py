"""The append-only audit log: entries chained by hash, appends serialised on one head row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.audit_chain import GENESIS, canonical_payload, chain_hash
from storage.models import AuditEntry, AuditHead


def entry_payload(entry: AuditEntry) -> dict[str, Any]:
    """The fields covered by an entry's hash."""
    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "draft_id": entry.draft_id,
        "details": entry.details,
    }


async def ensure_audit_head(*, session: AsyncSession) -> None:
    """Create the head row once (at start-up, before any append can race for it)."""
    if await session.get(AuditHead, 1) is None:
        session.add(AuditHead(id=1, last_id=0, last_hash=GENESIS))


async def append_audit(
    *,
    session: AsyncSession,
    at: datetime,
    actor: str,
    action: str,
    draft_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry; the head row lock makes concurrent appends form one chain."""
    head = (
        await session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update())
    ).one()
    entry = AuditEntry(
        id=head.last_id + 1,
        at=at,
        actor=actor,
        action=action,
        draft_id=draft_id,
        details=details or {},
        prev_hash=head.last_hash,
        hash="",
    )
    entry.hash = chain_hash(head.last_hash, canonical_payload(entry_payload(entry)))
    head.last_id = entry.id or 0
    head.last_hash = entry.hash
    session.add(entry)
    session.add(head)
    return entry
