"""The 三审 rules as pure functions: who may decide which stage, and what a decision leads to.

Sources: 先审后发、一事一审 (Zhanjiang 第八条, Qinzhou 第十四条); three stages in order by three
different people, 不同意 returns the draft to its submitter, a revised draft is reviewed again
(Qinzhou 附件 三); 会签 for specialised items (Qinzhou 附件 四). Who may sign a stage at all is
fixed by role (Qinzhou 附件 四(一): 一审 采编人员, 二审 科室负责人, 三审 单位领导; 五(三) 防止委托代劳):
no 转审, 代理 or admin reassignment can put a stage in the hands of someone without that role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from bot.core.config import (
    SUBMITTER,
    ChainSettings,
    StaffMember,
    StageSettings,
    default_eligible_roles,
    members_with_role,
)


class Refusal(Enum):
    """Why a person may not decide; handlers turn each into a Chinese explanation."""

    NOT_IN_REVIEW = "not_in_review"
    STALE = "stale"
    NOT_ASSIGNEE = "not_assignee"
    SUBMITTER_LATER_STAGE = "submitter_later_stage"
    DECIDED_OTHER_STAGE = "decided_other_stage"
    ALREADY_DECIDED = "already_decided"
    NOT_ELIGIBLE = "not_eligible"


@dataclass(frozen=True)
class PastDecision:
    stage: int
    reviewer: str
    decision: str  # approve | reject
    round: int = 1  # a 退回 to an earlier stage starts a new round of the same version


@dataclass(frozen=True)
class Outcome:
    """What the decision does: stay (all-of waiting), advance to `next_stage`, approve, reject."""

    kind: str  # wait | advance | approved | rejected
    next_stage: int | None = None


def stage_of(chain: ChainSettings, stage: int) -> StageSettings:
    return chain.stages[stage - 1]


def eligible_roles(chain: ChainSettings, stage: int) -> tuple[str, ...]:
    """The roles that may sign `stage`: as configured, else the Qinzhou default for its place."""
    return stage_of(chain, stage).eligible_roles or default_eligible_roles(stage)


def signing_roles(member: StaffMember | None, chains: Iterable[ChainSettings]) -> list[str]:
    """The roles by which `member` signs some stage: a 代理 standing in must hold all of them."""
    if member is None:
        return []
    accepted = {r for c in chains for i in range(1, len(c.stages) + 1) for r in eligible_roles(c, i)}
    return [r for r in member.roles if r in accepted]


def is_eligible(member: StaffMember | None, roles: Iterable[str]) -> bool:
    """Whether `member` holds one of `roles` (someone not on the staff list never is)."""
    return member is not None and not set(member.roles).isdisjoint(roles)


def expand_assignees(
    stage_settings: StageSettings,
    *,
    stage: int,
    submitter: str,
    staff: Mapping[str, StaffMember],
    decided_elsewhere: Iterable[str] = (),
) -> tuple[str, ...]:
    """The people who may decide this stage, in config order, without duplicates.

    The submitter counts only where the chain names "@submitter" (stage 1 only: the editor's
    own first check); nobody who decided another stage of the same version may decide this one;
    nobody without one of the stage's eligible roles is ever an assignee.
    """
    roles = stage_settings.eligible_roles or default_eligible_roles(stage)
    decided = set(decided_elsewhere)
    result: dict[str, None] = {}  # ordered, and a quick "already in"
    for entry in stage_settings.assignees:
        candidates: Sequence[str]
        if entry == SUBMITTER:
            candidates = [submitter] if stage == 1 else []
        elif entry.startswith("role:"):
            role = entry[5:]
            candidates = members_with_role(staff, role)
        else:
            candidates = [entry]
        for userid in candidates:
            if userid in decided or userid in result or not is_eligible(staff.get(userid), roles):
                continue  # (someone not on the staff list is never eligible)
            if userid == submitter and (stage != 1 or SUBMITTER not in stage_settings.assignees):
                continue
            result[userid] = None
    return tuple(result)


def decided_other_stages(decisions: Iterable[PastDecision], stage: int) -> set[str]:
    """Everyone who decided another stage of this version, in any round."""
    return {d.reviewer for d in decisions if d.stage != stage}


def in_round(decisions: Iterable[PastDecision], stage: int, round_: int) -> list[PastDecision]:
    """The decisions that count for `stage` now (earlier rounds were sent back by 退回)."""
    return [d for d in decisions if d.stage == stage and d.round == round_]


def apply_delegations(
    assignees: Sequence[str],
    delegates: Mapping[str, str],
    *,
    submitter: str,
    stage: int,
    decided_elsewhere: Iterable[str] = (),
    eligible: Callable[[str], bool],
) -> tuple[str, ...]:
    """Replace people who are away by their delegate (代理), keeping separation of duties.

    A delegate who is the submitter (beyond stage 1), who decided another stage, or who may not
    sign this stage (`eligible`) cannot stand in; the away person then stays assigned so the
    stage is never left without anyone.
    """
    excluded = {d for d in delegates.values() if not eligible(d)} | set(decided_elsewhere)
    result: list[str] = []
    for userid in assignees:
        delegate = delegates.get(userid)
        chosen = userid
        if delegate and delegate not in excluded and not (delegate == submitter and stage > 1):
            chosen = delegate
        if chosen not in result:
            result.append(chosen)
    return tuple(result)


def check_may_decide(
    chain: ChainSettings,
    *,
    status: str,
    current_stage: int,
    acted_stage: int | None,
    reviewer: str,
    submitter: str,
    staff: Mapping[str, StaffMember],
    decisions: Sequence[PastDecision],
    current_round: int = 1,
    assignees: Sequence[str] | None = None,
) -> Refusal | None:
    """Return why `reviewer` may not decide now, or None when they may.

    `acted_stage` is the stage a card was sent for (None for typed commands, which always
    address the current stage; -1 for a card that was closed or belongs to an earlier
    version or round); `decisions` are those of the current version, all rounds.
    `assignees`, when given, are the stage's people after 转审 and 代理 (else the chain's).
    """
    if status != "in_review":
        return Refusal.NOT_IN_REVIEW
    if acted_stage is not None and acted_stage != current_stage:
        return Refusal.STALE
    if any(d.reviewer == reviewer for d in in_round(decisions, current_stage, current_round)):
        return Refusal.ALREADY_DECIDED
    if reviewer == submitter and current_stage > 1:
        return Refusal.SUBMITTER_LATER_STAGE
    if reviewer in decided_other_stages(decisions, current_stage):
        return Refusal.DECIDED_OTHER_STAGE
    allowed = assignees
    if allowed is None:
        allowed = expand_assignees(
            stage_of(chain, current_stage),
            stage=current_stage,
            submitter=submitter,
            staff=staff,
            decided_elsewhere=decided_other_stages(decisions, current_stage),
        )
    if reviewer not in allowed:
        return Refusal.NOT_ASSIGNEE
    if not is_eligible(staff.get(reviewer), eligible_roles(chain, current_stage)):
        return Refusal.NOT_ELIGIBLE  # named by a 转审 or 代理 from before the rule: still no
    return None


def decision_slot(mode: str, reviewer: str) -> str:
    """The uniqueness slot of a decision at a stage decided in `mode` (the chain's, or a 加签's):
    one per any-of stage, one per reviewer for all-of."""
    return reviewer if mode == "all" else "*"


def stages_passed(chain: ChainSettings, only: str = "") -> list[int]:
    """The 审 stages a version passes: the whole chain, or a 纠错 short chain ("1,3")."""
    every = list(range(1, len(chain.stages) + 1))
    chosen = [int(part) for part in only.split(",") if part.strip().isdigit()]
    return [s for s in every if s in chosen] or every


def next_stage(chain: ChainSettings, stage: int, only: str = "") -> int | None:
    """The stage after `stage`, or None when `stage` was the last one (the draft is approved)."""
    return next((s for s in stages_passed(chain, only) if s > stage), None)


def outcome_after(
    chain: ChainSettings,
    *,
    stage: int,
    decision: str,
    stage_decisions: Sequence[PastDecision],
    assignees: Sequence[str],
    mode: str | None = None,
    only: str = "",
) -> Outcome:
    """What follows once `decision` is recorded; `stage_decisions` already include it. `mode`
    overrides the chain's for this stage (a 加签 makes it 会签)."""
    if decision == "reject":
        return Outcome("rejected")
    if (mode or stage_of(chain, stage).mode) == "all":
        approved_by = {d.reviewer for d in stage_decisions if d.decision == "approve"}
        if not set(assignees) <= approved_by:
            return Outcome("wait")
    following = next_stage(chain, stage, only)
    if following is None:
        return Outcome("approved")
    return Outcome("advance", next_stage=following)
