"""Reads behind the quarterly and annual figures: accounts with their history, the duty and
after-publishing tasks of a period, 错情, and when each review stage began and ended."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import select as select_columns  # any number of columns (sqlmodel's: up to 4)
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.account_models import Account, AccountPause, AccountPost, AccountRequest, Recheck
from storage.duty_models import Incident, IncidentEvent, Inspection, InspectionFinding, ReadingTask
from storage.models import (
    AuditEntry,
    Draft,
    DraftVersion,
    ErrorCase,
    Occasion,
    ProofRecord,
    Staff,
    StageDecision,
)


@dataclass
class AccountHistory:
    """One account and everything its update record is replayed from."""

    account: Account
    posts: list[datetime] = field(default_factory=list)  # every post up to the period's end
    posts_in_period: int = 0
    unreviewed_in_period: int = 0  # /posted: not through review here
    pauses: list[tuple[datetime, datetime]] = field(default_factory=list)  # [start, end)
    warnings: int = 0  # 更新提醒 sent in the period
    alarms: int = 0  # 超期告警 sent in the period (one a day overdue)


@dataclass(frozen=True)
class Tally:
    """A task's count in the period: how many, done, done by the due time, found a problem."""

    total: int = 0
    done: int = 0
    on_time: int = 0
    problems: int = 0


@dataclass(frozen=True)
class StageSpan:
    """One review stage of one round of one version: from when it was reached to its decision."""

    stage: int
    name: str
    began: datetime
    decided: datetime


@dataclass
class PeriodFacts:
    accounts: list[AccountHistory]
    inspections: Tally
    findings: Tally  # 巡检 findings given for 整改 (done: fixed; on_time: fixed by the deadline)
    findings_recorded: int
    readings: Tally
    rechecks: Tally
    cases: list[tuple[ErrorCase, str]]  # 错情 and the draft's title
    incidents: Counter[str]
    stages: list[StageSpan]
    # the records an inspector reads through: what was found and fixed, reported, asked for
    finding_rows: list[InspectionFinding] = field(default_factory=list)
    incident_rows: list[tuple[Incident, list[IncidentEvent]]] = field(default_factory=list)
    requests: list[AccountRequest] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)


async def account_histories(session: AsyncSession, start: datetime, end: datetime) -> list[AccountHistory]:
    """Accounts registered before `end` and not closed before `start`, by unit and name."""
    accounts = (
        await session.exec(
            select(Account)
            .where(col(Account.created_at) < end)
            .order_by(col(Account.unit), col(Account.name))
        )
    ).all()
    histories = {a.id: AccountHistory(a) for a in accounts if a.closed_at is None or a.closed_at >= start}
    for post in (
        await session.exec(
            select(AccountPost).where(col(AccountPost.posted_at) < end).order_by(col(AccountPost.posted_at))
        )
    ).all():
        history = histories.get(post.account_id)
        if history is None:
            continue
        history.posts.append(post.posted_at)
        if post.posted_at >= start:
            history.posts_in_period += 1
            history.unreviewed_in_period += bool(post.unreviewed_reason)
    for pause in (await session.exec(select(AccountPause).where(col(AccountPause.started_at) < end))).all():
        if (history := histories.get(pause.account_id)) is not None:
            history.pauses.append((pause.started_at, pause.ended_at or pause.until))
    for occasion in (
        await session.exec(
            select(Occasion).where(
                col(Occasion.kind).in_(("account_warning", "account_overdue")),
                col(Occasion.claimed_at) >= start,
                col(Occasion.claimed_at) < end,
            )
        )
    ).all():
        account_id = occasion.subject.split("@", 1)[0]
        history = histories.get(int(account_id)) if account_id.isdigit() else None
        if history is None:
            continue
        if occasion.kind == "account_warning":
            history.warnings += 1
        else:
            history.alarms += 1
    return list(histories.values())


def _tally(rows: list[tuple[datetime | None, datetime | None, bool]]) -> Tally:
    """(done_at, due_at, problem) per task."""
    return Tally(
        total=len(rows),
        done=sum(done is not None for done, _, _ in rows),
        on_time=sum(done is not None and (due is None or done <= due) for done, due, _ in rows),
        problems=sum(problem for _, _, problem in rows),
    )


async def _column_rows(session: AsyncSession, statement: Any) -> Sequence[Any]:
    """The rows of a select of more columns than sqlmodel's `exec` is typed for (four)."""
    return (await session.exec(statement)).all()


async def stage_spans(session: AsyncSession, start: datetime, end: datetime) -> list[StageSpan]:
    """The stages decided in [start, end): each from the moment the draft reached it — the
    submission of its version, the end of the stage (or 校) before it in the same round, or the
    退回 that began the round — to its last decision. The drafts concerned are named by a
    subquery, never as a list of ids (a year can hold more drafts than a statement takes
    parameters: asyncpg's limit is 32,767), and only the columns needed are read."""
    touched = select(StageDecision.draft_id).where(
        col(StageDecision.decided_at) >= start, col(StageDecision.decided_at) < end
    )
    everything = await _column_rows(
        session,
        select_columns(
            col(StageDecision.draft_id),
            col(StageDecision.version),
            col(StageDecision.round),
            col(StageDecision.stage),
            col(StageDecision.stage_name),
            col(StageDecision.decided_at),
        ).where(col(StageDecision.draft_id).in_(touched)),
    )
    if not everything:
        return []
    proofs = await _column_rows(
        session,
        select_columns(
            col(ProofRecord.draft_id),
            col(ProofRecord.version),
            col(ProofRecord.round),
            col(ProofRecord.after_stage),
            col(ProofRecord.at),
        ).where(col(ProofRecord.draft_id).in_(touched)),
    )
    submitted = {
        (draft_id, version): created_at
        for draft_id, version, created_at in (
            await session.exec(
                select(DraftVersion.draft_id, DraftVersion.version, DraftVersion.created_at).where(
                    col(DraftVersion.draft_id).in_(touched)
                )
            )
        ).all()
    }
    returned: dict[tuple[int, int, int], datetime] = {}
    for draft_id, at, details in (
        await session.exec(
            select(AuditEntry.draft_id, AuditEntry.at, AuditEntry.details).where(
                AuditEntry.action == "return", col(AuditEntry.draft_id).in_(touched)
            )
        )
    ).all():
        if draft_id is not None and "round" in details:
            returned[(draft_id, int(details.get("version", 0)), int(details["round"]))] = at
    # (draft, version, round) → [(position, at)]: a 审 of stage s is at (s, 0), the 校 after it (s, 1)
    marks: dict[tuple[int, int, int], list[tuple[tuple[int, int], datetime]]] = {}
    ends: dict[tuple[int, int, int, int], tuple[datetime, str]] = {}  # a stage's last decision in the period
    for draft_id, version, round_, stage, stage_name, decided_at in everything:
        marks.setdefault((draft_id, version, round_), []).append(((stage, 0), decided_at))
        key = (draft_id, version, round_, stage)
        if start <= decided_at < end and (key not in ends or ends[key][0] < decided_at):
            ends[key] = (decided_at, stage_name)
    for draft_id, version, round_, after_stage, at in proofs:
        marks.setdefault((draft_id, version, round_), []).append(((after_stage, 1), at))
    spans = []
    for (draft_id, version, round_, stage), (decided, stage_name) in ends.items():
        before = [at for pos, at in marks.get((draft_id, version, round_), []) if pos < (stage, 0)]
        began = max(
            [
                *before,
                returned.get((draft_id, version, round_)) or submitted.get((draft_id, version)) or decided,
            ]
        )
        spans.append(StageSpan(stage, stage_name, min(began, decided), decided))
    return sorted(spans, key=lambda s: (s.stage, s.decided))


async def error_cases(session: AsyncSession, start: datetime, end: datetime) -> list[tuple[ErrorCase, str]]:
    """The 错情 recorded in [start, end), oldest first, each with its draft's title."""
    rows = await session.exec(
        select(ErrorCase, Draft.title)
        .join(Draft, col(Draft.id) == ErrorCase.draft_id)
        .where(col(ErrorCase.recorded_at) >= start, col(ErrorCase.recorded_at) < end)
        .order_by(col(ErrorCase.id))
    )
    return [(case, title) for case, title in rows.all()]


async def incidents_raised(session: AsyncSession, start: datetime, end: datetime) -> list[Incident]:
    """The incidents raised in [start, end), oldest first."""
    rows = await session.exec(
        select(Incident)
        .where(col(Incident.raised_at) >= start, col(Incident.raised_at) < end)
        .order_by(col(Incident.id))
    )
    return list(rows.all())


async def period_facts(session: AsyncSession, start: datetime, end: datetime) -> PeriodFacts:
    def within(column: datetime | None) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        return col(column) >= start, col(column) < end

    inspections = (await session.exec(select(Inspection).where(*within(Inspection.sent_at)))).all()
    findings = (
        await session.exec(select(InspectionFinding).where(*within(InspectionFinding.found_at)))
    ).all()
    readings = (await session.exec(select(ReadingTask).where(*within(ReadingTask.sent_at)))).all()
    rechecks = (await session.exec(select(Recheck).where(*within(Recheck.created_at)))).all()
    cases = await error_cases(session, start, end)
    incidents = await incidents_raised(session, start, end)
    events: dict[int, list[IncidentEvent]] = {}
    if incidents:
        for event in (
            await session.exec(
                select(IncidentEvent)
                .where(
                    col(IncidentEvent.incident_id).in_(select(Incident.id).where(*within(Incident.raised_at)))
                )
                .order_by(col(IncidentEvent.at), col(IncidentEvent.id))
            )
        ).all():
            events.setdefault(event.incident_id, []).append(event)
    requests = [
        r
        for r in (
            await session.exec(
                select(AccountRequest)
                .where(col(AccountRequest.requested_at) < end)
                .order_by(col(AccountRequest.id))
            )
        ).all()
        if any(t is not None and t >= start for t in (r.requested_at, r.decided_at, r.filed_at))
        or r.status == "pending"
        or (r.status == "approved" and r.filed_at is None)
    ]
    assigned = [f for f in findings if f.assignee]
    return PeriodFacts(
        accounts=await account_histories(session, start, end),
        inspections=_tally([(i.done_at, i.due_at, False) for i in inspections]),
        findings=_tally([(f.fixed_at, f.due_at, False) for f in assigned]),
        findings_recorded=len(findings),
        readings=_tally([(r.done_at, r.due_at, r.outcome == "problem") for r in readings]),
        rechecks=_tally([(r.done_at, r.due_at, r.outcome == "problem") for r in rechecks]),
        cases=cases,
        incidents=Counter(i.kind for i in incidents),
        stages=await stage_spans(session, start, end),
        finding_rows=sorted(findings, key=lambda f: f.id or 0),
        incident_rows=[(i, events.get(i.id or 0, [])) for i in incidents],
        requests=requests,
        names={s.userid: s.name for s in (await session.exec(select(Staff))).all()},
    )
