"""Streaming queries behind the exports: 保密审查表 rows per draft version, and the 台账 log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.rules.review_form import ReviewFormRow, StageOpinion
from storage.models import AuditEntry, Draft, Staff, StageDecision

BATCH = 1000


async def _stream(session: AsyncSession, statement: Any) -> AsyncIterator[Any]:
    """Rows of `statement` fetched `BATCH` at a time (server-side cursor where available)."""
    result = await session.stream(statement.execution_options(yield_per=BATCH))
    async for partition in result.partitions(BATCH):
        for row in partition:
            yield row


async def review_form_batches(
    session: AsyncSession, start: datetime, end: datetime
) -> AsyncIterator[list[ReviewFormRow]]:
    """One form row per draft version whose latest decision falls in [start, end).

    Within a version the latest round's decision of each stage counts (an earlier round was
    sent back by 退回); a version rejected at 二审 shows 不同意 there and nothing after it.
    """
    last = (
        select(
            StageDecision.draft_id.label("draft_id"),  # type: ignore[attr-defined]
            StageDecision.version.label("version"),  # type: ignore[attr-defined]
            func.max(StageDecision.decided_at).label("last_at"),
        )
        .group_by(col(StageDecision.draft_id), col(StageDecision.version))
        .subquery()
    )
    statement = (
        select(
            col(StageDecision.draft_id), col(StageDecision.version), col(StageDecision.round),
            col(StageDecision.stage), col(StageDecision.decision), col(StageDecision.reviewer_name),
            col(StageDecision.on_behalf_of), col(StageDecision.decided_at), col(StageDecision.opinion),
            col(Draft.title), col(Draft.source_kind), col(Draft.source_note), col(Draft.disclosure),
            col(Draft.platforms), col(Draft.submitter_name), col(Draft.status),
            col(Draft.version).label("draft_version"),
        )
        .join(last, (last.c.draft_id == StageDecision.draft_id) & (last.c.version == StageDecision.version))
        .join(Draft, col(Draft.id) == StageDecision.draft_id)
        .where(last.c.last_at >= start, last.c.last_at < end)
        .order_by(
            last.c.last_at,
            col(StageDecision.draft_id),
            col(StageDecision.version),
            col(StageDecision.round),
            col(StageDecision.stage),
            col(StageDecision.id),
        )
    )
    batch: list[ReviewFormRow] = []
    group: tuple[int, int] | None = None
    draft: Any = None
    stages: dict[int, Any] = {}
    round_ = 0
    seq = 0
    async for decision in _stream(session, statement):
        row_draft = decision  # one flat row carries the decision and its draft's columns
        key = (decision.draft_id, decision.version)
        if key != group and draft is not None and group is not None:
            seq += 1
            batch.append(_form_row(seq, draft, group[1], stages))
            stages, round_ = {}, 0
            if len(batch) >= BATCH:
                yield batch
                batch = []
        group, draft = key, row_draft
        if decision.round != round_:
            # A new round began where 退回 sent the draft: later stages of earlier rounds lapse.
            stages = {n: d for n, d in stages.items() if n < decision.stage}
            round_ = decision.round
        stages[decision.stage] = decision
    if draft is not None and group is not None:
        seq += 1
        batch.append(_form_row(seq, draft, group[1], stages))
    if batch:
        yield batch


def _form_row(seq: int, draft: Any, version: int, stages: dict[int, Any]) -> ReviewFormRow:
    opinions: list[StageOpinion | None] = []
    for number in (1, 2, 3):
        d = stages.get(number)
        if d is None:
            opinions.append(None)
            continue
        reviewer = d.reviewer_name
        if d.on_behalf_of:
            reviewer += f"（代{d.on_behalf_of}）"
        opinions.append(StageOpinion(d.decision, reviewer, d.decided_at, d.opinion))  # type: ignore[arg-type]
    remarks = [f"稿件{draft.draft_id}号第{version}版"]
    if any(d.decision == "reject" for d in stages.values()):
        remarks.append("未通过，已退回修改")
    elif draft.status == "approved" and draft.draft_version == version:
        remarks.append("已通过三审")
    elif draft.status == "withdrawn" and draft.draft_version == version:
        remarks.append("已撤回")
    return ReviewFormRow(
        seq=seq,
        title=draft.title,
        source_kind=draft.source_kind,  # type: ignore[arg-type]
        source_note=draft.source_note,
        disclosure=draft.disclosure,  # type: ignore[arg-type]
        platforms=frozenset(p for p in draft.platforms.split(",") if p),
        stage_opinions=(opinions[0], opinions[1], opinions[2]),
        submitter_name=draft.submitter_name,
        remark="；".join(remarks),
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


LEDGER_ACTIONS = (
    "submit", "approve", "reject", "revise", "approved", "withdraw", "transfer", "return", "cc",
    "remind", "published",
)


async def ledger_batches(
    session: AsyncSession, start: datetime, end: datetime
) -> AsyncIterator[list[LedgerRow]]:
    """Every review decision and lifecycle action in [start, end), in the audit log's order."""
    names = {s.userid: s.name for s in (await session.exec(select(Staff))).all()}
    statement = (
        select(
            col(AuditEntry.at), col(AuditEntry.draft_id), col(AuditEntry.action), col(AuditEntry.actor),
            col(AuditEntry.details), col(AuditEntry.hash), col(Draft.title),
        )
        .join(Draft, col(Draft.id) == AuditEntry.draft_id, isouter=True)
        .where(
            AuditEntry.at >= start,
            AuditEntry.at < end,
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
            )
        )
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
