"""The 保密审查表's content as plain data: one row per item, its 来源/公开/平台 and its stages' opinions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

SourceKind = Literal["own", "reprint", "external"]
Disclosure = Literal["active", "on_request"]
Platform = Literal["website", "newmedia", "other"]
Decision = Literal["approve", "reject"]
# Where the item stands: the row shows its final version if decided, else its current one.
RowState = Literal["approved", "rejected", "in_review", "withdrawn", "classified", "retracted"]

SOURCE_KINDS: dict[str, str] = {
    "own": "本机关制发信息",
    "reprint": "转载信息",
    "external": "非本机关信息",
}
DISCLOSURES: dict[str, str] = {"active": "主动公开", "on_request": "依申请公开"}
PLATFORMS: dict[str, str] = {"website": "政府网站", "newmedia": "政务新媒体", "other": "其他"}
DECISIONS: dict[str, str] = {"approve": "同意", "reject": "不同意"}
STAGE_NAMES = ("一审", "二审", "三审")  # the form's three opinion columns


def stage_label(stage: int) -> str:
    """The form's name for a stage: 一审/二审/三审, then 第4审… for longer chains."""
    return STAGE_NAMES[stage - 1] if 1 <= stage <= len(STAGE_NAMES) else f"第{stage}审"


def signer_name(name: str, on_behalf_name: str = "") -> str:
    """Who signed, by name: a delegate as 「李四（代张三）」 (谁签字谁负责: both are on record)."""
    return f"{name}（代{on_behalf_name}）" if on_behalf_name else name


@dataclass(frozen=True, slots=True)
class StageOpinion:
    """One stage's decision on an item: who signed (names), when (tz-aware), and what they wrote.

    For a 会签 stage the signers are joined with 、 and the stage is 不同意 if anyone said so.
    """

    decision: Decision
    reviewer_name: str
    decided_at: datetime
    opinion: str = ""

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {sorted(DECISIONS)}: {self.decision!r}")
        if self.decided_at.tzinfo is None or self.decided_at.utcoffset() is None:
            raise ValueError("StageOpinion.decided_at must be tz-aware")

    def verdict(self) -> str:
        """The opinion as written in an opinion cell: 「同意」, 「不同意：理由」 or 「同意：意见」."""
        text = DECISIONS[self.decision]
        return f"{text}：{self.opinion.strip()}" if self.opinion.strip() else text


@dataclass(frozen=True, slots=True)
class SignedDecision:
    """One recorded decision of one version, as the form needs it (names already resolved)."""

    round: int
    stage: int
    decision: Decision
    signer: str  # signer_name(): the delegate with the away reviewer, by name
    decided_at: datetime
    opinion: str = ""


@dataclass(frozen=True, slots=True)
class EarlierVersion:
    """A version before the row's one, in brief: who said 不同意 at which stage and why.

    `stage` is 0 when the version was replaced without a 不同意 (revised during review, or
    returned to its submitter by the hard time limit).
    """

    version: int
    stage: int = 0
    reviewer_name: str = ""
    opinion: str = ""


@dataclass(frozen=True, slots=True)
class ReviewFormRow:
    """One line of the 保密审查表: one item (稿件) in its final or current version."""

    seq: int
    title: str
    source_kind: SourceKind
    source_note: str
    disclosure: Disclosure
    platforms: frozenset[str]
    stage_opinions: tuple[StageOpinion | None, StageOpinion | None, StageOpinion | None]
    submitter_name: str
    draft_id: int = 0
    version: int = 1
    state: RowState = "approved"
    current_stage: int = 0  # where an unfinished item stands (in review or withdrawn)
    later_stages: tuple[tuple[int, StageOpinion], ...] = ()  # stages past 三审, if a chain has them
    earlier: tuple[EarlierVersion, ...] = ()
    important: bool = False  # 重要稿件: the 主要领导's 审签 follows 三审

    def __post_init__(self) -> None:
        if self.source_kind not in SOURCE_KINDS:
            raise ValueError(f"source_kind must be one of {sorted(SOURCE_KINDS)}")
        if self.disclosure not in DISCLOSURES:
            raise ValueError(f"disclosure must be one of {sorted(DISCLOSURES)}")
        if not isinstance(self.platforms, frozenset):
            object.__setattr__(self, "platforms", frozenset(self.platforms))
        unknown = self.platforms - PLATFORMS.keys()
        if unknown:
            raise ValueError(f"unknown platforms {sorted(unknown)}")
        if len(self.stage_opinions) != 3:
            raise ValueError("stage_opinions must have exactly three entries (None = not decided)")


def standing_decisions(decisions: Iterable[SignedDecision]) -> dict[int, list[SignedDecision]]:
    """The decisions of one version that still stand, per stage.

    Rounds are taken in order; a round begins where 退回 sent the draft (its lowest stage), and
    the decisions of earlier rounds from that stage on lapse. Several decisions of one stage in
    one round are a 会签.
    """
    stages: dict[int, list[SignedDecision]] = {}
    round_: int | None = None
    for decision in sorted(decisions, key=lambda d: (d.round, d.stage, d.decided_at)):
        if decision.round != round_:
            stages = {n: ds for n, ds in stages.items() if n < decision.stage}
            round_ = decision.round
        stages.setdefault(decision.stage, []).append(decision)
    return stages


def stage_opinion(decisions: Sequence[SignedDecision]) -> StageOpinion:
    """One stage's decisions as one opinion (a 会签's signers joined with 、)."""
    signers = list(dict.fromkeys(d.signer for d in decisions))
    rejected = any(d.decision == "reject" for d in decisions)
    opinions = [
        f"{d.signer}：{d.opinion.strip()}" if len(signers) > 1 else d.opinion.strip()
        for d in decisions
        if d.opinion.strip()
    ]
    return StageOpinion(
        "reject" if rejected else "approve",
        "、".join(signers),
        max(d.decided_at for d in decisions),
        "；".join(opinions),
    )


def shown_stages(
    stages: dict[int, list[SignedDecision]], state: RowState, current_stage: int
) -> dict[int, StageOpinion]:
    """The stages the row shows: all of a decided item's; of an unfinished one only those it has
    passed in its current round (a 会签 half signed is not a decision), so it cannot look finished."""
    shown = {}
    for stage, decisions in sorted(stages.items()):
        opinion = stage_opinion(decisions)
        if (
            state in ("approved", "retracted")
            or stage < current_stage
            or (
                state in ("rejected", "classified")
                and stage == current_stage
                and opinion.decision == "reject"
            )
        ):
            shown[stage] = opinion
    return shown


def earlier_version(version: int, stages: dict[int, list[SignedDecision]]) -> EarlierVersion:
    """A replaced version in brief: its (last) 不同意, if it had one."""
    for stage in sorted(stages, reverse=True):
        opinion = stage_opinion(stages[stage])
        if opinion.decision == "reject":
            rejecting = [d for d in stages[stage] if d.decision == "reject"]
            return EarlierVersion(
                version,
                stage,
                "、".join(dict.fromkeys(d.signer for d in rejecting)),
                "；".join(d.opinion.strip() for d in rejecting if d.opinion.strip()),
            )
    return EarlierVersion(version)
