"""The leaders' dashboard (概况): drafts by stage and age, overdue stages, a period's 错情, the duty
calendar ahead with its gaps, every account's time left, and incidents — each read once."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from bot.core.config import ERROR_KINDS, Settings
from bot.rules.calendar import is_workday, local_day, review_pending_time
from bot.services.review import step_name, waiting_on
from bot.services.scope import Scope
from storage import drafts_repo, duty_repo
from storage.account_models import Account
from storage.accounts_repo import accounts_by_remaining, closed_accounts, period_of
from storage.duty_models import Incident, Shift
from storage.health_repo import drafts_by_stage
from storage.models import Draft, ErrorCase
from storage.report_repo import error_cases, incidents_raised

# Who may open it: the unit's leaders, its 主要领导 and the admins.
DASHBOARD_ROLES = ("leader", "principal", "admin")
# A draft's age at its current stage falls in the first bucket whose limit it is under.
AGE_LIMITS = (timedelta(days=1), timedelta(days=3))
CALENDAR_DAYS = 14


def may_see_dashboard(scope: Scope) -> bool:
    member = scope.staff.get(scope.user)
    return member is not None and any(role in member.roles for role in DASHBOARD_ROLES)


def age_bucket(age: timedelta) -> int:
    """0: under a day, 1: a day to under three, 2: three days or more."""
    return next((i for i, limit in enumerate(AGE_LIMITS) if age < limit), len(AGE_LIMITS))


# ---------------------------------------------------------------- drafts


@dataclass(frozen=True)
class WaitingDraft:
    """A draft in review at its current 审 stage or 校 step."""

    draft: Draft
    step: str  # 一审, 一校, …
    waited: timedelta  # since it reached that stage, on the clock
    pending: timedelta  # as 催办 counts it (working days only when configured)
    overdue: bool  # pending at least [reminders] remind_after_hours: the reminders have begun
    people: tuple[str, ...] = ()  # whom it waits on (looked up for overdue drafts only)

    @property
    def age(self) -> int:
        return age_bucket(self.waited)


@dataclass(frozen=True)
class StageRow:
    step: str
    by_age: tuple[int, ...]  # drafts per age bucket

    @property
    def total(self) -> int:
        return sum(self.by_age)


@dataclass(frozen=True)
class DraftFigures:
    stages: list[StageRow]
    waiting: list[WaitingDraft]  # every draft in review, longest waiting first
    returned: int  # 已退回, waiting for the submitter's revision

    @property
    def overdue(self) -> list[WaitingDraft]:
        return [w for w in self.waiting if w.overdue]

    @property
    def in_review(self) -> int:
        return len(self.waiting)


def chain_steps(settings: Settings) -> list[tuple[tuple[int, int], str]]:
    """Every 审 stage and 校 step the configured chains have, in review order: (rank, name)."""
    ranked: dict[str, tuple[int, int]] = {}
    for chain in settings.chains:
        for number, stage in enumerate(chain.stages, start=1):
            ranked[stage.name] = min(ranked.get(stage.name, (number, 0)), (number, 0))
            proof = chain.proof_after(number)
            if proof is not None:
                ranked[proof.name] = min(ranked.get(proof.name, (number, 1)), (number, 1))
    return sorted(((rank, name) for name, rank in ranked.items()), key=lambda item: item[0])


async def draft_figures(scope: Scope) -> DraftFigures:
    settings, now = scope.settings, scope.now()
    limit = timedelta(hours=settings.reminders.remind_after_hours)
    waiting: list[WaitingDraft] = []
    ranks = {name: rank for rank, name in chain_steps(settings)}
    for draft in await drafts_repo.list_in_review(session=scope.session):
        chain = settings.chain_for(draft.category, draft.important)
        name = step_name(chain, draft)
        ranks.setdefault(name, (draft.stage, int(draft.step == "proof")))
        pending = review_pending_time(draft.stage_entered_at, now, settings)
        overdue = pending >= limit
        people = (await waiting_on(scope, draft))[1] if overdue else ()
        waiting.append(WaitingDraft(draft, name, now - draft.stage_entered_at, pending, overdue, people))
    counts: Counter[tuple[str, int]] = Counter((w.step, w.age) for w in waiting)
    stages = [
        StageRow(name, tuple(counts[(name, bucket)] for bucket in range(len(AGE_LIMITS) + 1)))
        for name in sorted(ranks, key=lambda n: ranks[n])
    ]
    by_status = await drafts_by_stage(scope.session)
    return DraftFigures(stages, waiting, by_status.get(("rejected", ""), 0))


# ---------------------------------------------------------------- 错情


@dataclass(frozen=True)
class ErrorFigures:
    by_kind: list[tuple[str, int]]  # every kind, in the order people name them
    cases: list[tuple[ErrorCase, str]]  # with the draft's title, oldest first

    @property
    def total(self) -> int:
        return len(self.cases)


async def error_figures(scope: Scope, start: datetime, end: datetime) -> ErrorFigures:
    cases = await error_cases(scope.session, start, end)
    counts = Counter(case.kind for case, _ in cases)
    kinds = [*ERROR_KINDS.values(), *(k for k in counts if k not in ERROR_KINDS.values())]
    return ErrorFigures([(kind, counts[kind]) for kind in kinds], cases)


# ---------------------------------------------------------------- duty


@dataclass(frozen=True)
class ShiftSlot:
    """The people of the shifts that start at one moment, by role (主班, 副班, 带班领导)."""

    start: datetime
    end: datetime
    people: dict[str, str]  # role → userid
    planned: bool  # from the rotation, not yet written to the roster (it is, ahead of its time)


@dataclass(frozen=True)
class DutyDay:
    day: date
    workday: bool
    slots: list[ShiftSlot]
    gaps: list[tuple[datetime, datetime]]  # the hours of this day without a 主班


@dataclass(frozen=True)
class DutyFigures:
    on_duty: list[Shift]  # now, 主班 first
    days: list[DutyDay]
    gaps: list[tuple[datetime, datetime]]  # from now to the last day's end


def _midnight(day: date, settings: Settings) -> datetime:
    """The UTC instant a local day begins."""
    return datetime.combine(day, time(0), settings.tz).astimezone(UTC)


async def duty_figures(scope: Scope) -> DutyFigures:
    """The roster from now to the end of the CALENDAR_DAYS-th day: the stored shifts, and where the
    rotation has not been written that far yet (the roster keeps `gap_horizon_days` ahead), the
    shifts it will write — an imported or swapped shift always wins, as when it is written."""
    settings, now = scope.settings, scope.now()
    today = local_day(now, settings.tz)
    days = [today + timedelta(days=k) for k in range(CALENDAR_DAYS)]
    start, end = _midnight(days[0], settings), _midnight(days[-1] + timedelta(days=1), settings)
    stored = await duty_repo.shifts_between(scope.session, start, end)
    slots: dict[datetime, dict[str, tuple[str, bool, datetime]]] = {}
    for shift in stored:
        slots.setdefault(shift.start_at, {})[shift.role] = (shift.userid, False, shift.end_at)
    held = {(s.role, s.start_at) for s in stored}
    planned = [
        p
        for day in [today - timedelta(days=1), *days]
        for p in duty_repo.rotation_for(settings, day)
        if p.start_at > now and p.start_at < end and (p.role, p.start_at) not in held
    ]
    for plan in planned:
        slots.setdefault(plan.start_at, {})[plan.role] = (plan.userid, True, plan.end_at)
    primaries: list[Shift | duty_repo.PlannedShift] = [
        *(s for s in stored if s.role == "primary"),
        *(p for p in planned if p.role == "primary"),
    ]
    gaps = duty_repo.uncovered(now, end, primaries)
    rows = []
    for day in days:
        begins, ends = _midnight(day, settings), _midnight(day + timedelta(days=1), settings)
        rows.append(
            DutyDay(
                day=day,
                workday=is_workday(day, settings.calendar),
                slots=[
                    ShiftSlot(
                        at,
                        max(e for _, _, e in people.values()),
                        {role: people[role][0] for role in sorted(people, key=_role_rank)},
                        all(p for _, p, _ in people.values()),
                    )
                    for at, people in sorted(slots.items())
                    if local_day(at, settings.tz) == day
                ],
                gaps=[(max(a, begins), min(b, ends)) for a, b in gaps if a < ends and b > begins],
            )
        )
    on_duty = sorted((s for s in stored if s.start_at <= now < s.end_at), key=lambda s: _role_rank(s.role))
    return DutyFigures(on_duty, rows, gaps)


def _role_rank(role: str) -> int:
    return duty_repo.ROLES.index(role) if role in duty_repo.ROLES else len(duty_repo.ROLES)


# ---------------------------------------------------------------- accounts


@dataclass(frozen=True)
class AccountTime:
    account: Account
    left: timedelta  # to its deadline; negative once overdue
    period: timedelta

    @property
    def overdue(self) -> bool:
        return self.left <= timedelta(0)  # at the deadline itself the time is up (the alarm fires)


@dataclass(frozen=True)
class AccountFigures:
    active: list[AccountTime]  # closest to (or furthest past) the deadline first
    paused: list[Account]
    closed: list[Account]
    unknown: list[Account] = field(default_factory=list)  # active without a deadline (none expected)


async def account_figures(scope: Scope) -> AccountFigures:
    now = scope.now()
    active, paused, unknown = [], [], []
    for account in await accounts_by_remaining(scope.session, now):
        if account.status == "paused":
            paused.append(account)
        elif account.deadline_at is None:
            unknown.append(account)
        else:
            active.append(AccountTime(account, account.deadline_at - now, period_of(account, scope.settings)))
    return AccountFigures(active, paused, await closed_accounts(scope.session), unknown)


# ---------------------------------------------------------------- incidents


def ack_minutes(incident: Incident) -> int | None:
    """Minutes from raising to 收到 (whole minutes, as /incidents shows them)."""
    if incident.acked_at is None:
        return None
    return int((incident.acked_at - incident.raised_at).total_seconds() // 60)


@dataclass(frozen=True)
class IncidentFigures:
    unresolved: list[Incident]  # oldest first
    raised: list[Incident]  # in the period, oldest first

    @property
    def ack_times(self) -> list[int]:
        return [m for m in (ack_minutes(i) for i in self.raised) if m is not None]

    @property
    def median_ack(self) -> float | None:
        times = self.ack_times
        return statistics.median(times) if times else None

    @property
    def longest_ack(self) -> int | None:
        return max(self.ack_times, default=None)


async def incident_figures(scope: Scope, start: datetime, end: datetime) -> IncidentFigures:
    return IncidentFigures(
        await duty_repo.unresolved_incidents(scope.session),
        await incidents_raised(scope.session, start, end),
    )


# ---------------------------------------------------------------- all of it


@dataclass(frozen=True)
class Dashboard:
    drafts: DraftFigures
    errors: ErrorFigures
    duty: DutyFigures
    accounts: AccountFigures
    incidents: IncidentFigures


async def dashboard(scope: Scope, start: datetime, end: datetime) -> Dashboard:
    """Everything the page shows; `start`–`end` is the period of the 错情 and incident figures."""
    return Dashboard(
        drafts=await draft_figures(scope),
        errors=await error_figures(scope, start, end),
        duty=await duty_figures(scope),
        accounts=await account_figures(scope),
        incidents=await incident_figures(scope, start, end),
    )
