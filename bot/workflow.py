"""The 三审 rules as pure functions: who may decide which stage, and what a decision leads to.

Sources: 先审后发、一事一审 (Zhanjiang 第八条, Qinzhou 第十四条); three stages in order by three
different people, 不同意 returns the draft to its submitter, a revised draft is reviewed again
(Qinzhou 附件 三); 会签 for specialised items (Qinzhou 附件 四).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from bot.config import SUBMITTER, ChainSettings, StaffMember, StageSettings


class Refusal(Enum):
    """Why a person may not decide; handlers turn each into a Chinese explanation."""

    NOT_IN_REVIEW = "not_in_review"
    STALE = "stale"
    NOT_ASSIGNEE = "not_assignee"
    SUBMITTER_LATER_STAGE = "submitter_later_stage"
    DECIDED_OTHER_STAGE = "decided_other_stage"
    ALREADY_DECIDED = "already_decided"


@dataclass(frozen=True)
class PastDecision:
    stage: int
    reviewer: str
    decision: str  # approve | reject


@dataclass(frozen=True)
class Outcome:
    """What the decision does: stay (all-of waiting), advance to `next_stage`, approve, reject."""

    kind: str  # wait | advance | approved | rejected
    next_stage: int | None = None


def stage_of(chain: ChainSettings, stage: int) -> StageSettings:
    return chain.stages[stage - 1]


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
    own first check); nobody who decided another stage of the same version may decide this one.
    """
    excluded = set(decided_elsewhere)
    result: list[str] = []
    for entry in stage_settings.assignees:
        if entry == SUBMITTER:
            candidates = [submitter] if stage == 1 else []
        elif entry.startswith("role:"):
            role = entry[5:]
            candidates = [m.userid for m in staff.values() if role in m.roles]
        else:
            candidates = [entry]
        for userid in candidates:
            if userid in excluded or userid in result:
                continue
            if userid == submitter and (stage != 1 or SUBMITTER not in stage_settings.assignees):
                continue
            result.append(userid)
    return tuple(result)


def decided_other_stages(decisions: Iterable[PastDecision], stage: int) -> set[str]:
    return {d.reviewer for d in decisions if d.stage != stage}


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
) -> Refusal | None:
    """Return why `reviewer` may not decide now, or None when they may.

    `acted_stage` is the stage a card was sent for (None for typed commands, which always
    address the current stage); `decisions` are those of the current version.
    """
    if status != "in_review":
        return Refusal.NOT_IN_REVIEW
    if acted_stage is not None and acted_stage != current_stage:
        return Refusal.STALE
    if any(d.reviewer == reviewer and d.stage == current_stage for d in decisions):
        return Refusal.ALREADY_DECIDED
    if reviewer == submitter and current_stage > 1:
        return Refusal.SUBMITTER_LATER_STAGE
    if reviewer in decided_other_stages(decisions, current_stage):
        return Refusal.DECIDED_OTHER_STAGE
    allowed = expand_assignees(
        stage_of(chain, current_stage),
        stage=current_stage,
        submitter=submitter,
        staff=staff,
        decided_elsewhere=decided_other_stages(decisions, current_stage),
    )
    if reviewer not in allowed:
        return Refusal.NOT_ASSIGNEE
    return None


def decision_slot(stage_settings: StageSettings, reviewer: str) -> str:
    """The uniqueness slot of a decision: one per any-of stage, one per reviewer for all-of."""
    return reviewer if stage_settings.mode == "all" else "*"


def outcome_after(
    chain: ChainSettings,
    *,
    stage: int,
    decision: str,
    stage_decisions: Sequence[PastDecision],
    assignees: Sequence[str],
) -> Outcome:
    """What follows once `decision` is recorded; `stage_decisions` already include it."""
    if decision == "reject":
        return Outcome("rejected")
    settings = stage_of(chain, stage)
    if settings.mode == "all":
        approved_by = {d.reviewer for d in stage_decisions if d.decision == "approve"}
        if not set(assignees) <= approved_by:
            return Outcome("wait")
    if stage == len(chain.stages):
        return Outcome("approved")
    return Outcome("advance", next_stage=stage + 1)
