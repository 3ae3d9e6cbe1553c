"""The Finding every check returns, the kinds and severities, overlaps resolved within a kind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# leader (kind 3) has its name reserved; its check comes later.
KINDS: tuple[str, ...] = ("typo", "wording", "leader", "privacy", "format", "link")
# severe: must not be published as is (political wording, personal data);
# warn: very likely an error, a reviewer decides; info: style.
SEVERITIES: tuple[str, ...] = ("severe", "warn", "info")


@dataclass(frozen=True, slots=True)
class Finding:
    """One spotted problem: text[start:end] (Python str offsets, end exclusive) and what to do."""

    start: int
    end: int
    kind: str
    severity: str
    text: str
    suggestion: str  # the correct form; "" when there is none (privacy: "" or a masked hint)
    rule: str  # Chinese: the rule or list it came from


def finding(text: str, start: int, end: int, kind: str, severity: str, suggestion: str, rule: str) -> Finding:
    """A Finding whose `text` is read from the checked text, so it always equals text[start:end]."""
    return Finding(start, end, kind, severity, text[start:end], suggestion, rule)


def without_overlaps(found: Iterable[Finding]) -> list[Finding]:
    """Per kind, the leftmost finding wins and, from one start, the longest; equal spans keep the
    first produced. Findings of different kinds may overlap. Sorted by (start, end, kind)."""
    ordered = sorted(enumerate(found), key=lambda item: (item[1].kind, item[1].start, -item[1].end, item[0]))
    kept: list[Finding] = []
    kind, reach = "", -1
    for _, f in ordered:
        if f.kind != kind:
            kind, reach = f.kind, -1
        if f.start >= reach:
            kept.append(f)
            reach = f.end
    kept.sort(key=lambda f: (f.start, f.end, f.kind))
    return kept
