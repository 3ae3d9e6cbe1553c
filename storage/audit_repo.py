"""The append-only audit log: entries chained by hash, appends serialised on one head row."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.rules.audit_chain import (
    GENESIS,
    ChainLink,
    VerifyResult,
    canonical_payload,
    chain_hash,
    verify_chain,
)
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


async def entries_for_draft(*, session: AsyncSession, draft_id: int) -> Sequence[AuditEntry]:
    """A draft's timeline: its audit entries in order."""
    statement = select(AuditEntry).where(AuditEntry.draft_id == draft_id).order_by(col(AuditEntry.id))
    return (await session.exec(statement)).all()


async def verify_audit_log(*, session: AsyncSession, batch: int = 1000) -> VerifyResult:
    """Re-hash the whole chain in id order (streamed) and check it ends at the head row.

    An edited entry breaks its own hash, a deleted one breaks the next link, and entries
    deleted from the end are caught because the head remembers the last id and hash.
    """

    async def links() -> AsyncIterator[ChainLink]:
        result = await session.stream(
            select(AuditEntry).order_by(col(AuditEntry.id)).execution_options(yield_per=batch)
        )
        async for partition in result.scalars().partitions(batch):
            for entry in partition:
                yield ChainLink(entry.id or 0, entry.prev_hash, entry.hash, entry_payload(entry))

    collected: list[ChainLink] = []
    last: ChainLink | None = None
    result: VerifyResult | None = None

    # verify_chain is synchronous; feed it chunk by chunk, carrying the chain state across.
    expected_prev, expected_id, checked = GENESIS, None, 0
    async for link in links():
        collected.append(link)
        if len(collected) >= batch:
            result = _verify_part(collected, expected_prev, expected_id, checked)
            if not result.ok:
                return result
            last = collected[-1]
            expected_prev, expected_id, checked = last.hash, last.id + 1, result.checked
            collected = []
    result = _verify_part(collected, expected_prev, expected_id, checked)
    if not result.ok:
        return result
    if collected:
        last = collected[-1]
    head = await session.get(AuditHead, 1)
    head_id = head.last_id if head else 0
    head_hash = head.last_hash if head else GENESIS
    last_id = last.id if last else 0
    last_hash = last.hash if last else GENESIS
    if (head_id, head_hash) != (last_id, last_hash):
        return VerifyResult(False, result.checked, last_id + 1, f"记录在第 {last_id} 条之后被截断（应有 {head_id} 条）")
    return result


def _verify_part(
    links: list[ChainLink], expected_prev: str, expected_id: int | None, checked: int
) -> VerifyResult:
    if not links:
        return VerifyResult(True, checked)
    if expected_id is not None and links[0].id != expected_id:
        return VerifyResult(False, checked, links[0].id, f"缺少第 {expected_id} 条记录（被删除）")
    if links[0].prev_hash != expected_prev:
        return VerifyResult(False, checked, links[0].id, "与上一条记录的链接不符（前序记录被改动或删除）")
    part = verify_chain(links, genesis=links[0].prev_hash)
    return VerifyResult(part.ok, checked + part.checked, part.first_broken_id, part.reason)
