"""Marking spans of a version's plain text inside its sanitised HTML (智能识错 findings in the body)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

_TAG = re.compile(r"(<[^>]*>)")


@dataclass(frozen=True)
class Span:
    """text[start:end] of the plain text, to be wrapped as <mark id=… class=… title=…>."""

    start: int
    end: int
    mark_id: str
    css_class: str
    title: str


def highlight(fragment: str, text: str, spans: Sequence[Span]) -> str:
    """`fragment` (sanitised HTML whose text nodes hold `text`, paragraphs apart) with each span
    wrapped in a <mark>. The HTML's text is not `text` character for character (paragraph breaks
    and markup differ), so a span is placed by its words: the n-th occurrence of them in `text`
    becomes the n-th occurrence in the HTML's text nodes. A span whose words cross a tag (half
    bold) or overlap another is left unmarked: the page lists every finding anyway."""
    parts = _TAG.split(fragment)
    nodes = [(i, html.unescape(part)) for i, part in enumerate(parts) if i % 2 == 0 and part]
    placed: dict[int, list[tuple[int, int, Span]]] = {}
    for span in sorted(spans, key=lambda s: s.start):
        words = text[span.start : span.end]
        if not words.strip():
            continue
        place = _nth_in_nodes(nodes, words, _occurrence(text, words, span.start))
        if place is None:
            continue
        index, offset = place
        taken = placed.setdefault(index, [])
        if any(offset < end and start < offset + len(words) for start, end, _ in taken):
            continue
        taken.append((offset, offset + len(words), span))
    for index, marks in placed.items():
        node = html.unescape(parts[index])
        out, at = [], 0
        for start, end, span in sorted(marks, key=lambda m: m[0]):
            out.append(html.escape(node[at:start], quote=False))
            out.append(
                f'<mark id="{html.escape(span.mark_id)}" class="{html.escape(span.css_class)}" '
                f'title="{html.escape(span.title)}">{html.escape(node[start:end], quote=False)}</mark>'
            )
            at = end
        out.append(html.escape(node[at:], quote=False))
        parts[index] = "".join(out)
    return "".join(parts)


def _occurrence(text: str, words: str, start: int) -> int:
    """Which occurrence of `words` in `text` starts at `start` (0 for the first), counting
    occurrences that do not overlap, as str.find walks them."""
    count, at = 0, text.find(words)
    while at != -1 and at < start:
        count += 1
        at = text.find(words, at + len(words))
    return count


def _nth_in_nodes(nodes: list[tuple[int, str]], words: str, nth: int) -> tuple[int, int] | None:
    """(part index, offset) of the nth occurrence of `words` inside one text node, or None."""
    seen = 0
    for index, node in nodes:
        at = node.find(words)
        while at != -1:
            if seen == nth:
                return index, at
            seen += 1
            at = node.find(words, at + len(words))
    return None
