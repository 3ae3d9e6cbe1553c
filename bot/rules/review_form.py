"""The 保密审查表's content as plain data: an item's source, disclosure, platforms and three stage opinions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

SourceKind = Literal["own", "reprint", "external"]
Disclosure = Literal["active", "on_request"]
Platform = Literal["website", "newmedia", "other"]
Decision = Literal["approve", "reject"]

SOURCE_KINDS: dict[str, str] = {
    "own": "本机关制发信息",
    "reprint": "转载信息",
    "external": "非本机关信息",
}
DISCLOSURES: dict[str, str] = {"active": "主动公开", "on_request": "依申请公开"}
PLATFORMS: dict[str, str] = {"website": "政府网站", "newmedia": "政务新媒体", "other": "其他"}
DECISIONS: dict[str, str] = {"approve": "同意", "reject": "不同意"}
STAGE_NAMES = ("一审", "二审", "三审")


@dataclass(frozen=True, slots=True)
class StageOpinion:
    """One stage's decision on an item: who decided, when (tz-aware), and what they wrote."""

    decision: Decision
    reviewer_name: str
    decided_at: datetime
    opinion: str = ""

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {sorted(DECISIONS)}: {self.decision!r}")
        if self.decided_at.tzinfo is None or self.decided_at.utcoffset() is None:
            raise ValueError("StageOpinion.decided_at must be tz-aware")


@dataclass(frozen=True, slots=True)
class ReviewFormRow:
    """One line of the 保密审查表: an item with its source, disclosure, platforms and 3 stages."""

    seq: int
    title: str
    source_kind: SourceKind
    source_note: str
    disclosure: Disclosure
    platforms: frozenset[str]
    stage_opinions: tuple[StageOpinion | None, StageOpinion | None, StageOpinion | None]
    submitter_name: str
    remark: str = ""

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
