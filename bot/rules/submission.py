"""Parsing a submission: the title line, the 来源/公开/平台/类别 lines, then the body; answers to follow-up questions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

# Asked one at a time, in this order, when a chat submission leaves them out (保密审查表 注3:
# the submitter ticks 来源, 公开 and 平台 — nothing is assumed for them).
MetaField = Literal["source", "disclosure", "platforms"]
FIELDS: tuple[MetaField, ...] = ("source", "disclosure", "platforms")


class SubmissionError(ValueError):
    """A metadata line has a value we do not understand (message is Chinese)."""


@dataclass(frozen=True)
class DraftMeta:
    source_kind: str  # own | reprint | external
    source_note: str
    disclosure: str  # active | on_request
    platforms: tuple[str, ...]
    category: str  # issued | reprint | reported
    important: bool = False  # 重要稿件 / 重大信息: the 主要领导 signs after 三审 (审签)


@dataclass(frozen=True)
class MetaAnswers:
    """What a chat submission has said so far; None or () is "not said yet", never a default.

    类别 is not asked: without a 类别 line it follows from the 来源 (细则 三(二): 本机关制发 →
    制发类, 转载 → 转载类, 非本机关 → 报送类), and it is not a box on the 保密审查表.
    """

    source_kind: str | None = None
    source_note: str = ""
    disclosure: str | None = None
    platforms: tuple[str, ...] = ()
    category: str | None = None
    important: bool = False

    def missing(self) -> tuple[MetaField, ...]:
        said = {
            "source": self.source_kind is not None,
            "disclosure": self.disclosure is not None,
            "platforms": bool(self.platforms),
        }
        return tuple(f for f in FIELDS if not said[f])

    def complete(self) -> DraftMeta:
        """The draft's metadata once nothing is missing (ValueError otherwise)."""
        if self.missing() or self.source_kind is None or self.disclosure is None:
            raise ValueError(f"metadata still missing: {self.missing()}")
        return DraftMeta(
            source_kind=self.source_kind,
            source_note=self.source_note,
            disclosure=self.disclosure,
            platforms=self.platforms,
            category=self.category or _CATEGORY_FOR_SOURCE[self.source_kind],
            important=self.important,
        )

    def to_data(self) -> dict[str, Any]:
        """JSON-safe, for a conversation row."""
        return {
            "source_kind": self.source_kind,
            "source_note": self.source_note,
            "disclosure": self.disclosure,
            "platforms": list(self.platforms),
            "category": self.category,
            "important": self.important,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> MetaAnswers:
        return cls(
            source_kind=data.get("source_kind"),
            source_note=str(data.get("source_note") or ""),
            disclosure=data.get("disclosure"),
            platforms=tuple(data.get("platforms") or ()),
            category=data.get("category"),
            important=bool(data.get("important")),
        )


_META_LINE = re.compile(r"^\s*(来源|转载|公开|平台|类别|重要)\s*[:：]\s*(.*?)\s*$")
_YES, _NO = ("是", "重要", "重大", "yes"), ("否", "不是", "一般", "no")
_PLATFORMS = {
    "政府网站": "website",
    "网站": "website",
    "政务新媒体": "newmedia",
    "新媒体": "newmedia",
    "其他": "other",
}
_PLATFORM_NUMBERS = {"1": "website", "2": "newmedia", "3": "other"}
_CATEGORIES = {
    "制发类": "issued",
    "制发": "issued",
    "转载类": "reprint",
    "转载": "reprint",
    "报送类": "reported",
    "报送": "reported",
}
_CATEGORY_FOR_SOURCE = {"own": "issued", "reprint": "reprint", "external": "reported"}
_NUMBERED = re.compile(r"^([1-3])(?:$|[\s:：,，、(（]\s*(.*?)[)）]?\s*$)")
NEED_REPRINT_NOTE = "转载信息须注明转载来源，例如：转载：人民网"


def _source(value: str) -> tuple[str, str]:
    if value.startswith("本机关"):
        return "own", ""
    if value.startswith("非本机关"):
        return "external", value.removeprefix("非本机关信息").removeprefix("非本机关").strip("（）() ：:")
    if value.startswith("转载"):
        note = value.removeprefix("转载信息").removeprefix("转载").strip("（）() ：:")
        if not note:
            raise SubmissionError(NEED_REPRINT_NOTE)
        return "reprint", note
    raise SubmissionError(f"来源“{value}”无法识别，可填：本机关制发 / 转载：来源 / 非本机关")


def _disclosure(value: str) -> str:
    if value.startswith("主动"):
        return "active"
    if value.startswith("依申请"):
        return "on_request"
    raise SubmissionError(f"公开属性“{value}”无法识别，可填：主动公开 / 依申请公开")


def _platforms(value: str, *, numbers: bool = False) -> tuple[str, ...]:
    found: list[str] = []
    for part in re.split(r"[，,、/\s]+", value):
        if not part:
            continue
        if numbers and part.isdigit() and all(d in _PLATFORM_NUMBERS for d in part):
            found.extend(_PLATFORM_NUMBERS[d] for d in part)  # "1、2", "1 2" or "12"
        elif part in _PLATFORMS:
            found.append(_PLATFORMS[part])
        else:
            raise SubmissionError(f"发布平台“{part}”无法识别，可填：政府网站 / 政务新媒体 / 其他")
    if not found:
        raise SubmissionError("发布平台不能为空")
    return tuple(dict.fromkeys(found))


def _read_line(answers: MetaAnswers, key: str, value: str) -> MetaAnswers:
    """`answers` with one metadata line applied."""
    if key == "来源":
        kind, note = _source(value)
        return _with(answers, source_kind=kind, source_note=note)
    if key == "转载":
        if not value:
            raise SubmissionError(NEED_REPRINT_NOTE)
        return _with(answers, source_kind="reprint", source_note=value)
    if key == "公开":
        return _with(answers, disclosure=_disclosure(value))
    if key == "平台":
        return _with(answers, platforms=_platforms(value))
    if key == "重要":
        if value.lower() not in (*_YES, *_NO):
            raise SubmissionError(f"重要“{value}”无法识别，可填：是 / 否（重要稿件须主要领导审签）")
        return _with(answers, important=value.lower() in _YES)
    if value not in _CATEGORIES:
        raise SubmissionError(f"类别“{value}”无法识别，可填：制发类 / 转载类 / 报送类")
    return _with(answers, category=_CATEGORIES[value])


def _with(answers: MetaAnswers, **changes: Any) -> MetaAnswers:
    return MetaAnswers(**{**answers.to_data(), "platforms": answers.platforms, **changes})


def _read_lines(text: str, answers: MetaAnswers) -> tuple[MetaAnswers, list[str], bool]:
    """Leading metadata lines applied to `answers`; the remaining lines; whether any was read."""
    lines = text.splitlines()
    index = 0
    read = False
    while index < len(lines):
        match = _META_LINE.match(lines[index])
        if not match:
            if lines[index].strip():
                break
            index += 1
            continue
        answers = _read_line(answers, *match.groups())
        read = True
        index += 1
    return answers, lines[index:], read


def parse_submission(body: str) -> tuple[MetaAnswers, str]:
    """Split leading metadata lines from the body; unknown values raise SubmissionError.

    Nothing left out is assumed: MetaAnswers.missing() names what is still to be asked.
    """
    answers, rest, _ = _read_lines(body, MetaAnswers())
    return answers, "\n".join(rest).strip()


def parse_answer(field: MetaField, text: str, answers: MetaAnswers) -> MetaAnswers:
    """`answers` with the reply to the question about `field` applied.

    The reply may be metadata lines ("转载：人民网", several at once), the option's number
    ("1"; "2 人民网" for a reprint with its source; "1、2" for platforms) or its words.
    """
    text = text.strip()
    updated, rest, read = _read_lines(text, answers)
    if read:
        if any(line.strip() for line in rest):
            raise SubmissionError("回复只能包含 来源：/公开：/平台：/类别： 这几行，正文请在全部回答后发送。")
        return updated
    if field == "platforms":
        return _with(answers, platforms=_platforms(text, numbers=True))
    numbered = _NUMBERED.match(text)
    if field == "disclosure":
        if numbered and not numbered.group(2) and numbered.group(1) in "12":
            return _with(answers, disclosure=("active", "on_request")[int(numbered.group(1)) - 1])
        return _with(answers, disclosure=_disclosure(text))
    if numbered:
        note = (numbered.group(2) or "").strip()
        kind = ("own", "reprint", "external")[int(numbered.group(1)) - 1]
        if kind == "reprint" and not note:
            raise SubmissionError(NEED_REPRINT_NOTE + "，或回复“2 人民网”")
        return _with(answers, source_kind=kind, source_note="" if kind == "own" else note)
    kind, note = _source(text)
    return _with(answers, source_kind=kind, source_note=note)
