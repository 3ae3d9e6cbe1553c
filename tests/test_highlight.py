"""Findings marked in a version's HTML: placed by their words, never breaking or inventing markup."""

from __future__ import annotations

from bot.documents.docx_html import sanitize_html, text_to_html
from bot.documents.highlight import Span, highlight


def span(text: str, words: str, n: int = 1, nth: int = 0) -> Span:
    start = -1
    for _ in range(nth + 1):
        start = text.index(words, start + 1)
    return Span(start, start + len(words), f"f-{n}", "finding", f"第{n}处")


def test_a_typed_body_gets_each_finding_marked_where_it_is() -> None:
    text = "请联系王老师，电话13912345678。\n台湾总统出席了活动。"
    marked = highlight(text_to_html(text), text, [span(text, "13912345678", 1), span(text, "台湾总统", 2)])
    assert marked == (
        '<p>请联系王老师，电话<mark id="f-1" class="finding" title="第1处">13912345678</mark>。</p>'
        '<p><mark id="f-2" class="finding" title="第2处">台湾总统</mark>出席了活动。</p>'
    )


def test_the_second_occurrence_is_marked_not_the_first() -> None:
    text = "按装调试。\n\n设备按装完毕。"
    html = "<p>按装调试。</p><p><strong>设备</strong>按装完毕。</p>"
    assert highlight(html, text, [span(text, "按装", 1, nth=1)]) == (
        '<p>按装调试。</p><p><strong>设备</strong><mark id="f-1" class="finding" title="第1处">按装</mark>完毕。</p>'
    )


def test_entities_stay_escaped_and_a_title_cannot_open_a_tag() -> None:
    text = "A&B 公司 <说明> 按装"
    html = sanitize_html(text_to_html(text))
    hostile = Span(text.index("按装"), text.index("按装") + 2, "f-1", "finding", '"><script>x</script>')
    marked = highlight(html, text, [hostile])
    assert "<script>" not in marked and "&lt;说明&gt;" in marked and "A&amp;B" in marked
    assert marked.endswith('title="&quot;&gt;&lt;script&gt;x&lt;/script&gt;">按装</mark></p>')


def test_words_across_a_tag_or_overlapping_another_mark_are_left_alone() -> None:
    text = "台湾总统出席"
    html = "<p><strong>台湾</strong>总统出席</p>"
    assert highlight(html, text, [span(text, "台湾总统")]) == html
    plain = "<p>台湾总统出席</p>"
    both = [span(text, "台湾总统", 1), Span(2, 4, "f-2", "finding", "第2处")]
    assert highlight(plain, text, both) == (
        '<p><mark id="f-1" class="finding" title="第1处">台湾总统</mark>出席</p>'
    )
