"""The append-only audit log: entries chained by hash in commit order, linked on one head row as each transaction commits."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Table, bindparam, func, insert, update
from sqlalchemy import select as core_select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.rules.audit_chain import (
    GENESIS,
    ChainLink,
    VerifyResult,
    canonical_payload,
    chain_hash,
    checkpoint_mac,
    record_digest,
    verify_chain,
)
from storage import at_commit, direct
from storage.models import AuditCheckpoint, AuditEntry, AuditHead, Draft, ProofRecord, StageDecision
from storage.schema import table_of


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
    bind: Any = None,
) -> AuditEntry:
    """Add one entry to this transaction. It joins the chain as the transaction commits (its id
    and hashes are set then, see `_seal`), so the head row is locked for the commit alone and
    transactions that append run side by side until then. `bind`: a record (a decision, a 校
    signature) whose audit_id is set to the entry's id at that moment. An entry added inside a
    savepoint that rolls back is dropped with it (storage.at_commit)."""
    entry = direct.record(
        AuditEntry,
        at=at,
        actor=actor,
        action=action,
        draft_id=draft_id,
        details=details or {},
        prev_hash="",
        hash="",
    )
    at_commit.queue(session.sync_session, _AUDIT, (entry, bind))
    return entry


_AUDIT = "audit"


_HEAD_TABLE = table_of(AuditHead)
_ENTRY_TABLE = table_of(AuditEntry)
# The statements of the seal, run on the driver's connection (storage.direct).
_LOCK_HEAD = direct.Direct(
    core_select(_HEAD_TABLE.c.last_id, _HEAD_TABLE.c.last_hash).where(_HEAD_TABLE.c.id == 1).with_for_update()
)
_MOVE_HEAD = direct.Direct(
    update(_HEAD_TABLE)
    .where(_HEAD_TABLE.c.id == 1)
    .values(last_id=bindparam("new_last_id"), last_hash=bindparam("new_last_hash"))
)
_ADD_ENTRY = direct.Direct(
    insert(_ENTRY_TABLE).values({c.key: bindparam(c.key) for c in _ENTRY_TABLE.columns})
)
_ADD_ENTRIES = direct.each_as_arrays(_ENTRY_TABLE, [c.key for c in _ENTRY_TABLE.columns])


@functools.cache
def _bind_audit_id(table: Table) -> direct.Direct:
    """UPDATE of a bound record's audit_id in its `table`."""
    return direct.Direct(
        update(table).where(table.c.id == bindparam("row_id")).values(audit_id=bindparam("entry_id"))
    )


@functools.cache
def _bind_audit_ids(table: Table) -> direct.Direct:
    """PostgreSQL: _bind_audit_id for many records in one statement (arrays of row and entry ids)."""
    pairs = (
        func.unnest(
            bindparam("row_id", type_=ARRAY(Integer())), bindparam("entry_id", type_=ARRAY(Integer()))
        )
        .table_valued("row_id", "entry_id")
        .render_derived(name="sanshen_bound")
    )
    return direct.Direct(update(table).where(table.c.id == pairs.c.row_id).values(audit_id=pairs.c.entry_id))


def _seal(session: Session, pending: list[tuple[AuditEntry, Any]]) -> None:
    """Lock the head row, give each pending entry the next id, link it to the one before and
    move the head: the chain's order is the order in which appending transactions commit. (On
    PostgreSQL the writes after the lock wait to go with the commit's other writes, in one
    statement: direct.run_many_soon_now.)"""
    (last_id, last_hash), *_ = direct.rows_now(session, _LOCK_HEAD)
    entries = []
    bindings: dict[Table, list[dict[str, int]]] = {}  # bound records already stored, per table
    for entry, bound in pending:
        last_id += 1
        entry.id = last_id
        entry.prev_hash = last_hash
        entry.hash = last_hash = chain_hash(last_hash, canonical_payload(entry_payload(entry)))
        entries.append({c.key: getattr(entry, c.key) for c in _ENTRY_TABLE.columns})
        if bound is not None and bound.id is None:  # not inserted yet: the flush writes both
            bound.audit_id = entry.id
            session.add(bound)
        elif bound is not None:
            # Written here, and set without marking the row changed: no second UPDATE at the flush.
            set_committed_value(bound, "audit_id", entry.id)
            bindings.setdefault(table_of(type(bound)), []).append({"row_id": bound.id, "entry_id": entry.id})
    for table, rows in bindings.items():  # one call per table, however many were bound
        direct.run_many_soon_now(session, table.name, _bind_audit_id(table), _bind_audit_ids(table), rows)
    direct.run_many_soon_now(session, _ENTRY_TABLE.name, _ADD_ENTRY, _ADD_ENTRIES, entries)
    direct.run_soon_now(session, _HEAD_TABLE.name, _MOVE_HEAD, new_last_id=last_id, new_last_hash=last_hash)


at_commit.on_commit(_AUDIT, _seal)


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
        return VerifyResult(
            False, result.checked, last_id + 1, f"记录在第 {last_id} 条之后被截断（应有 {head_id} 条）"
        )
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


# ---------------------------------------------------------------- what the forms print, bound to the chain


def decision_fields(row: StageDecision) -> dict[str, Any]:
    """The columns of a decision that the 保密审查表 and the pages print."""
    return {
        "draft_id": row.draft_id,
        "version": row.version,
        "round": row.round,
        "stage": row.stage,
        "stage_name": row.stage_name,
        "reviewer_userid": row.reviewer_userid,
        "reviewer_name": row.reviewer_name,
        "decision": row.decision,
        "opinion": row.opinion,
        "decided_at": row.decided_at,
        "on_behalf_of": row.on_behalf_of,
        "secrecy": row.secrecy,
        "checklist": list(row.checklist or []),
        # only when there are marks: the digests of decisions recorded before marks existed hold
        **({"finding_marks": dict(row.finding_marks)} if row.finding_marks else {}),
    }


def proof_fields(row: ProofRecord) -> dict[str, Any]:
    return {
        "draft_id": row.draft_id,
        "version": row.version,
        "round": row.round,
        "after_stage": row.after_stage,
        "proof_name": row.proof_name,
        "method": row.method,
        "proofreader_userid": row.proofreader_userid,
        "proofreader_name": row.proofreader_name,
        "result": row.result,
        "note": row.note,
        "at": row.at,
    }


def draft_fields(draft: Draft) -> dict[str, Any]:
    """A draft's columns on the 保密审查表 (fixed once submitted)."""
    return {
        "title": draft.title,
        "category": draft.category,
        "source_kind": draft.source_kind,
        "source_note": draft.source_note,
        "disclosure": draft.disclosure,
        "platforms": draft.platforms,
        "submitter_userid": draft.submitter_userid,
        "submitter_name": draft.submitter_name,
    }


RECORD_KINDS: dict[str, tuple[Any, Any, str]] = {
    # details key → (table, its printed fields, what the verifier calls it)
    "decision_id": (StageDecision, decision_fields, "审核记录"),
    "proof_id": (ProofRecord, proof_fields, "校对记录"),
}


async def verify_records(*, session: AsyncSession, batch: int = 1000) -> list[str]:
    """Every decision, 校 signature and draft the forms print matches the digest its audit entry
    carries, and none lacks its entry. Records from before the binding existed are counted, not
    judged. Returns the problems found (Chinese), empty when all is well."""
    problems: list[str] = []
    bound: dict[str, set[int]] = {key: set() for key in RECORD_KINDS}
    result = await session.stream(
        select(AuditEntry)
        .where(col(AuditEntry.action).in_(("submit", "approve", "reject", "classified", "proof")))
        .order_by(col(AuditEntry.id))
        .execution_options(yield_per=batch)
    )
    async for partition in result.scalars().partitions(batch):
        for entry in partition:
            details = entry.details or {}
            if entry.action == "submit" and "form" in details and entry.draft_id is not None:
                draft = await session.get(Draft, entry.draft_id)
                if draft is None or record_digest(draft_fields(draft)) != details["form"]:
                    problems.append(
                        f"稿件{entry.draft_id}号的标题、来源、公开或平台与第 {entry.id} 条记录不符（被改动）"
                    )
            for key, (table, fields, label) in RECORD_KINDS.items():
                if key not in details:
                    continue
                row = await session.get(table, details[key])
                bound[key].add(int(details[key]))
                if row is None:
                    problems.append(f"第 {entry.id} 条记录对应的{label}已被删除")
                elif record_digest(fields(row)) != details.get("record") or row.audit_id != entry.id:
                    problems.append(f"{label}（第 {entry.id} 条）的内容与审计记录不符（被改动）")
    for key, (table, _, label) in RECORD_KINDS.items():
        rows = await session.exec(select(table.id).where(col(table.audit_id).is_not(None)))
        for row_id in rows.all():
            if row_id not in bound[key]:
                problems.append(f"{label} {row_id} 没有对应的审计记录（被添加）")
    return problems


async def add_checkpoint(*, session: AsyncSession, at: datetime, key: str = "") -> AuditCheckpoint:
    """Witness the chain's head now (signed with `key` when one is configured)."""
    head = (await session.exec(select(AuditHead).where(AuditHead.id == 1))).one()
    checkpoint = AuditCheckpoint(
        at=at,
        entry_id=head.last_id,
        entry_hash=head.last_hash,
        mac=checkpoint_mac(key, head.last_id, head.last_hash) if key else "",
    )
    session.add(checkpoint)
    return checkpoint


async def verify_checkpoints(
    *, session: AsyncSession, external: Sequence[tuple[int, str]] = (), key: str = ""
) -> list[str]:
    """Each checkpoint — those in the database and those kept elsewhere (`external`: a file, the
    admins' messages) — must still be in the chain; with the key, the stored ones must be signed."""
    problems: list[str] = []
    stored = (await session.exec(select(AuditCheckpoint).order_by(col(AuditCheckpoint.id)))).all()
    if key:
        for checkpoint in stored:
            if checkpoint.mac != checkpoint_mac(key, checkpoint.entry_id, checkpoint.entry_hash):
                problems.append(f"检查点（第 {checkpoint.entry_id} 条）的签名不符：检查点被伪造或改动")
    for entry_id, entry_hash in [*((c.entry_id, c.entry_hash) for c in stored), *external]:
        if entry_id == 0:
            continue
        entry = await session.get(AuditEntry, entry_id)
        if entry is None or entry.hash != entry_hash:
            problems.append(
                f"检查点记录的第 {entry_id} 条（哈希 {entry_hash[:12]}…）已不在日志中：日志被截断或改写"
            )
    return problems
