"""check(): one automaton pass for the lists, then the pattern checks, the allow-list, sorting."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable

from bot.proofread import formatting, leaders, links, privacy, typo, wording
from bot.proofread.findings import Finding, finding, without_overlaps
from bot.proofread.lexicon import Lexicon, default_lexicon

# The checks that are patterns rather than word lists, each (text, lexicon) -> findings.
# Word-list kinds need no entry here: a list in lexicon.LISTS is matched by the automaton.
# Kind 1 (typo) is a list (lists/typo.tsv) plus typo.find, a same-sound confusion check over
# jieba's dictionary, loaded on first use; kind 3 (leader) reads the unit's table from the lexicon.
Check = Callable[[str, Lexicon], Iterable[Finding]]
CHECKS: tuple[Check, ...] = (
    lambda text, _lexicon: wording.find(text),
    privacy.find,
    lambda text, _lexicon: formatting.find(text),
    links.find,
    leaders.find,  # kind 3: the unit's 领导人姓名职务表 (a no-op without one)
    typo.find,
)


def check(text: str, *, lexicon: Lexicon | None = None) -> list[Finding]:
    """Every finding in `text`, sorted by (start, end, kind); no two of one kind overlap and none
    lies inside an allow-listed term. Pure: no I/O, no clock; the default lexicon is shared."""
    if lexicon is None:
        lexicon = default_lexicon()
    hits, allowed = lexicon.scan(text)
    found: list[Finding] = [
        finding(text, start, end, entry.kind, entry.severity, entry.suggestion, entry.rule)
        for start, end, entry in hits
    ]
    for run in CHECKS:
        found.extend(run(text, lexicon))
    if allowed:
        found = _outside(found, allowed)
    return without_overlaps(found)


def _outside(found: list[Finding], allowed: list[tuple[int, int]]) -> list[Finding]:
    """The findings that do not lie within an allow-listed span."""
    spans = sorted(allowed)
    starts = [start for start, _ in spans]
    reach: list[int] = []  # reach[i]: the furthest end among spans[0..i]
    for _, end in spans:
        reach.append(max(end, reach[-1]) if reach else end)
    kept = []
    for f in found:
        i = bisect_right(starts, f.start) - 1
        if i < 0 or reach[i] < f.end:
            kept.append(f)
    return kept
