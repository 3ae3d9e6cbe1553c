"""Parsing a submission: the title line, optional 来源/公开/平台/类别 lines, then the body."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.config import ReviewSettings


class SubmissionError(ValueError):
    """A metadata line has a value we do not understand (message is Chinese)."""


@dataclass(frozen=True)
class DraftMeta:
    source_kind: str  # own | reprint | external
    source_note: str
    disclosure: str  # active | on_request
    platforms: tuple[str, ...]
    category: str  # issued | reprint | reported


_META_LINE = re.compile(r"^\s*(来源|转载|公开|平台|类别)\s*[:：]\s*(.*?)\s*$")
_PLATFORMS = {"政府网站": "website", "网站": "website", "政务新媒体": "newmedia", "新媒体": "newmedia",
              "其他": "other"}
_CATEGORIES = {"制发类": "issued", "制发": "issued", "转载类": "reprint", "转载": "reprint",
               "报送类": "reported", "报送": "reported"}
_CATEGORY_FOR_SOURCE = {"own": "issued", "reprint": "reprint", "external": "reported"}


def _source(value: str) -> tuple[str, str]:
    if value.startswith("本机关"):
        return "own", ""
    if value.startswith("非本机关"):
        return "external", value.removeprefix("非本机关").strip("（）() ：:")
    if value.startswith("转载"):
        note = value.removeprefix("转载信息").removeprefix("转载").strip("（）() ：:")
        if not note:
            raise SubmissionError("转载信息须注明转载来源，例如：转载：人民网")
        return "reprint", note
    raise SubmissionError(f"来源“{value}”无法识别，可填：本机关制发 / 转载：来源 / 非本机关")


def parse_submission(body: str, defaults: ReviewSettings) -> tuple[DraftMeta, str]:
    """Split leading metadata lines from the body; unknown values raise SubmissionError."""
    source_kind, source_note = defaults.default_source, ""
    disclosure = defaults.default_disclosure
    platforms: tuple[str, ...] = tuple(defaults.default_platforms)
    category: str | None = None
    lines = body.splitlines()
    index = 0
    while index < len(lines):
        match = _META_LINE.match(lines[index])
        if not match:
            if lines[index].strip():
                break
            index += 1
            continue
        key, value = match.groups()
        if key == "来源":
            source_kind, source_note = _source(value)
        elif key == "转载":
            if not value:
                raise SubmissionError("转载信息须注明转载来源，例如：转载：人民网")
            source_kind, source_note = "reprint", value
        elif key == "公开":
            if value.startswith("主动"):
                disclosure = "active"
            elif value.startswith("依申请"):
                disclosure = "on_request"
            else:
                raise SubmissionError(f"公开属性“{value}”无法识别，可填：主动公开 / 依申请公开")
        elif key == "平台":
            found = []
            for part in re.split(r"[，,、/\s]+", value):
                if not part:
                    continue
                if part not in _PLATFORMS:
                    raise SubmissionError(f"发布平台“{part}”无法识别，可填：政府网站 / 政务新媒体 / 其他")
                found.append(_PLATFORMS[part])
            if not found:
                raise SubmissionError("发布平台不能为空")
            platforms = tuple(dict.fromkeys(found))
        elif key == "类别":
            if value not in _CATEGORIES:
                raise SubmissionError(f"类别“{value}”无法识别，可填：制发类 / 转载类 / 报送类")
            category = _CATEGORIES[value]
        index += 1
    meta = DraftMeta(
        source_kind=source_kind,
        source_note=source_note,
        disclosure=disclosure,
        platforms=platforms,
        category=category or _CATEGORY_FOR_SOURCE[source_kind],
    )
    return meta, "\n".join(lines[index:]).strip()
