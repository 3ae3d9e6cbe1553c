"""Character-level diffs between two versions of a (Chinese) text, as counts and as escaped HTML."""

from __future__ import annotations

import html

from diff_match_patch import diff_match_patch

# Upper bound on the time spent finding a minimal diff; past it the diff is still correct,
# just coarser.
DIFF_TIMEOUT_SECONDS = 1.0

_DELETE, _EQUAL, _INSERT = -1, 0, 1


def _diffs(old: str, new: str) -> list[tuple[int, str]]:
    dmp = diff_match_patch()
    dmp.Diff_Timeout = DIFF_TIMEOUT_SECONDS
    diffs = dmp.diff_main(old, new)
    dmp.diff_cleanupSemantic(diffs)
    return [(op, text) for op, text in diffs]


def diff_html(old: str, new: str) -> str:
    """Escaped HTML of ``new`` against ``old``: removals in <del>, additions in <ins>.

    Newlines are kept as they are; show the result with ``white-space: pre-wrap``.
    """
    out: list[str] = []
    for op, text in _diffs(old, new):
        escaped = html.escape(text)
        if op == _INSERT:
            out.append(f"<ins>{escaped}</ins>")
        elif op == _DELETE:
            out.append(f"<del>{escaped}</del>")
        else:
            out.append(escaped)
    return "".join(out)


def diff_stats(old: str, new: str) -> tuple[int, int]:
    """(inserted characters, deleted characters) from ``old`` to ``new``."""
    inserted = deleted = 0
    for op, text in _diffs(old, new):
        if op == _INSERT:
            inserted += len(text)
        elif op == _DELETE:
            deleted += len(text)
    return inserted, deleted
