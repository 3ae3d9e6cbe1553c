"""Streaming queries behind the exports: 保密审查表 rows per item (draft), and the 台账 log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_
from sqlalchemy import select as select_columns  # any number of columns (sqlmodel's: up to 4)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.rules.review_form import (
    ReviewFormRow,
    RowState,
    SignedDecision,
    earlier_version,
    shown_stages,
    signer_name,
    standing_decisions,
)
from storage.models import AuditEntry, Draft, DraftVersion, Staff, StageDecision

BATCH = 1000


async def _stream(session: AsyncSession, statement: Any) -> AsyncIterator[Any]:
    """Rows of `statement` fetched `BATCH` at a time (server-side cursor where available)."""
    result = await session.stream(statement.execution_options(yield_per=BATCH))
    async for partition in result.partitions(BATCH):
        for row in partition:
            yield row


def _item_event_at() -> Any:
    """Per draft: when its review last moved — its latest decision, or the submission of its
    current version if that came later (a new draft, or a revision not yet decided)."""
    last = (
        select(
            col(StageDecision.draft_id).label("draft_id"),
            func.max(StageDecision.decided_at).label("last_at"),
        )
        .group_by(col(StageDecision.draft_id))
        .subquery()
    )
    submitted = func.coalesce(col(DraftVersion.created_at), col(Draft.created_at))
    event_at = case(
        (or_(last.c.last_at.is_(None), last.c.last_at < submitted), submitted), else_=last.c.last_at
    )
    return (
        select(col(Draft.id).label("draft_id"), event_at.label("event_at"))
        .select_from(Draft)
        .join(last, last.c.draft_id == Draft.id, isouter=True)
        .join(
            DraftVersion,
            (col(DraftVersion.draft_id) == Draft.id) & (col(DraftVersion.version) == Draft.version),
            isouter=True,
        )
        .subquery()
    )


async def review_form_batches(
    session: AsyncSession, start: datetime, end: datetime
) -> AsyncIterator[list[ReviewFormRow]]:
    """One form row per item (draft) whose review last moved in [start, end) (_item_event_at).

    The row shows the item's current version — its final one once decided: a 不同意 v1 and an
    approved v2 are one row (v2), the earlier version summed up in 备注. Rows stream in that
    order; each draft's decisions come together, so memory holds one draft at a time. Signers
    are named: a delegate's away reviewer is resolved to a name from the Staff table.
    """
    names = {s.userid: s.name for s in (await session.exec(select(Staff))).all()}
    items = _item_event_at()
    statement = (
        select_columns(
            items.c.draft_id,
            col(Draft.title),
            col(Draft.source_kind),
            col(Draft.source_note),
            col(Draft.disclosure),
            col(Draft.platforms),
            col(Draft.submitter_name),
            col(Draft.status),
            col(Draft.important),
            col(Draft.version).label("draft_version"),
            col(Draft.stage).label("draft_stage"),
            col(StageDecision.version),
            col(StageDecision.round),
            col(StageDecision.stage),
            col(StageDecision.decision),
            col(StageDecision.reviewer_userid),
            col(StageDecision.reviewer_name),
            col(StageDecision.on_behalf_of),
            col(StageDecision.decided_at),
            col(StageDecision.opinion),
        )
        .select_from(items)
        .join(Draft, col(Draft.id) == items.c.draft_id)
        .join(StageDecision, col(StageDecision.draft_id) == items.c.draft_id, isouter=True)
        .where(items.c.event_at >= start, items.c.event_at < end)
        .order_by(
            items.c.event_at,
            items.c.draft_id,
            col(StageDecision.version),
            col(StageDecision.round),
            col(StageDecision.stage),
            col(StageDecision.id),
        )
    )
    batch: list[ReviewFormRow] = []
    draft: Any = None
    versions: dict[int, list[SignedDecision]] = {}
    seq = 0
    async for row in _stream(session, statement):
        if draft is not None and row.draft_id != draft.draft_id:
            seq += 1
            batch.append(_form_row(seq, draft, versions))
            versions = {}
            if len(batch) >= BATCH:
                yield batch
                batch = []
        draft = row  # one flat row carries the draft's columns and one decision (or none)
        if row.decision is not None:
            versions.setdefault(row.version, []).append(_signed(row, names))
    if draft is not None:
        seq += 1
        batch.append(_form_row(seq, draft, versions))
    if batch:
        yield batch


def _signed(row: Any, names: dict[str, str]) -> SignedDecision:
    name = row.reviewer_name
    if not name or name == row.reviewer_userid:  # recorded before the person was on [[staff]]
        name = names.get(row.reviewer_userid, name or row.reviewer_userid)
    behalf = names.get(row.on_behalf_of, row.on_behalf_of) if row.on_behalf_of else ""
    return SignedDecision(
        row.round, row.stage, row.decision, signer_name(name, behalf), row.decided_at, row.opinion
    )


def _form_row(seq: int, draft: Any, versions: dict[int, list[SignedDecision]]) -> ReviewFormRow:
    state: RowState = (
        draft.status
        if draft.status in ("approved", "rejected", "withdrawn", "classified", "retracted")
        else "in_review"
    )
    current = standing_decisions(versions.get(draft.draft_version, []))
    shown = shown_stages(current, state, draft.draft_stage)
    return ReviewFormRow(
        seq=seq,
        title=draft.title,
        source_kind=draft.source_kind,
        source_note=draft.source_note,
        disclosure=draft.disclosure,
        platforms=frozenset(p for p in draft.platforms.split(",") if p),
        stage_opinions=(shown.get(1), shown.get(2), shown.get(3)),
        submitter_name=draft.submitter_name,
        draft_id=draft.draft_id,
        version=draft.draft_version,
        state=state,
        current_stage=draft.draft_stage,
        later_stages=tuple((n, op) for n, op in shown.items() if n > 3),
        important=bool(draft.important),
        earlier=tuple(
            earlier_version(v, standing_decisions(versions.get(v, []))) for v in range(1, draft.draft_version)
        ),
    )


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One line of the 三审三校 台账: a decision or a lifecycle action, from the audit log."""

    seq: int
    at: datetime
    draft_id: int | None
    title: str
    action: str
    actor_userid: str
    actor_name: str
    details: dict[str, Any]
    entry_hash: str
    # userid → name for the people the details name (转审 to, 抄送, 代理); one shared mapping.
    names: Mapping[str, str] = field(default_factory=dict)


LEDGER_ACTIONS = (
    "submit",
    "approve",
    "reject",
    "revise",
    "approved",
    "withdraw",
    "transfer",
    "return",
    "cc",
    "remind",
    "published",
    "proof",
    "cosign",
    "finding_mark",
)


async def ledger_batches(
    session: AsyncSession, start: datetime, end: datetime
) -> AsyncIterator[list[LedgerRow]]:
    """Every review decision and lifecycle action in [start, end), in the audit log's order."""
    names = {s.userid: s.name for s in (await session.exec(select(Staff))).all()}
    statement = (
        select_columns(
            col(AuditEntry.at),
            col(AuditEntry.draft_id),
            col(AuditEntry.action),
            col(AuditEntry.actor),
            col(AuditEntry.details),
            col(AuditEntry.hash),
            col(Draft.title),
        )
        .join(Draft, col(Draft.id) == AuditEntry.draft_id, isouter=True)
        .where(
            col(AuditEntry.at) >= start,
            col(AuditEntry.at) < end,
            col(AuditEntry.action).in_(LEDGER_ACTIONS),
        )
        .order_by(col(AuditEntry.id))
    )
    batch: list[LedgerRow] = []
    seq = 0
    async for entry in _stream(session, statement):
        title = entry.title
        seq += 1
        batch.append(
            LedgerRow(
                seq=seq,
                at=entry.at,
                draft_id=entry.draft_id,
                title=title or "",
                action=entry.action,
                actor_userid=entry.actor,
                actor_name="系统" if entry.actor == "system" else names.get(entry.actor, entry.actor),
                details=dict(entry.details or {}),
                entry_hash=entry.hash,
                names=names,
            )
        )
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
