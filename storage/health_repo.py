"""Reads behind /healthz and /metrics: the outbox by status, why rows failed, how long the oldest
due message has waited, and the drafts by status and stage."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Draft, OutboxMessage

ERRCODE_RE = re.compile(r"errcode (\d+)")


@dataclass(frozen=True)
class OutboxState:
    by_status: dict[str, int]
    failed_by_reason: dict[str, int]
    oldest_due: datetime | None  # since when the longest-waiting due message has waited


async def outbox_state(session: AsyncSession, now: datetime) -> OutboxState:
    rows = (
        await session.exec(select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status)))
    ).all()
    failed = Counter(
        (match.group(1) if (match := ERRCODE_RE.search(error or "")) else "other")
        for error in (
            await session.exec(select(OutboxMessage.last_error).where(OutboxMessage.status == "failed"))
        ).all()
    )
    # waiting since its first try (a retried row's not_before moves on) or since it fell due;
    # a row held for later (quiet hours, pacing) and never tried does not count
    oldest = (
        await session.exec(
            select(
                func.min(func.coalesce(col(OutboxMessage.first_try_at), col(OutboxMessage.not_before)))
            ).where(
                OutboxMessage.status == "pending",
                (col(OutboxMessage.not_before) <= now) | (col(OutboxMessage.attempts) > 0),
            )
        )
    ).first()
    return OutboxState({status: int(n) for status, n in rows}, dict(failed), oldest)


async def drafts_by_stage(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(status, stage) → count; the stage is given for drafts in review only ("" otherwise)."""
    rows = (
        await session.exec(
            select(Draft.status, Draft.stage, func.count()).group_by(col(Draft.status), col(Draft.stage))
        )
    ).all()
    counts: Counter[tuple[str, str]] = Counter()
    for status, stage, n in rows:
        counts[(status, str(stage) if status == "in_review" else "")] += int(n)
    return dict(counts)
