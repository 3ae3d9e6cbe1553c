"""标点与格式 (kind 5): half-width marks, unpaired brackets, repeats, impossible dates, 序号."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator

from bot.proofread.findings import Finding, finding

KIND = "format"
RULE_HALF_WIDTH = "标点符号用法（GB/T 15834—2011）：汉字之间用全角标点"
RULE_UNPAIRED = "标点符号用法（GB/T 15834—2011）：成对标点缺少另一半"
RULE_REPEATED = "标点符号用法（GB/T 15834—2011）：标点重复"
RULE_DATE = "日期核对：不存在的日期"
RULE_ORDINAL = "序号核对：层次序数跳号或重复（GB/T 9704—2012 7.3.3）"

_CJK = "\u4e00-\u9fff"
_FULL_WIDTH = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！", "(": "（", ")": "）"}
_HALF_WIDTH = re.compile(rf"(?<=[{_CJK}])[,;:?!()](?=[{_CJK}])")

# Repeats of one mark; …… and —— are single marks in Chinese and are not in this class.
_REPEATED = re.compile(r"([。，、；：？！])\1+")

_OPENERS = {"《": "》", "“": "”", "‘": "’", "（": "）", "【": "】"}
_CLOSERS = {close: open_ for open_, close in _OPENERS.items()}
_BRACKET = re.compile(r"[《》“”‘’（）【】\n]")
# A paragraph opening with "1）" or "a）" uses the closing bracket alone as its list marker.
_LONE_MARKER = re.compile(r"[ \t\u3000]*(?:[0-9]{1,2}|[一二三四五六七八九十]{1,3}|[A-Za-z])")

# 2023年2月29日, 2023年13月, 2月30日 (a day needs a month; a month alone needs a year).
_DATE = re.compile(r"(?<![0-9])(?:(?P<y>[0-9]{4}) ?年 ?)?(?P<m>[0-9]{1,2}) ?月(?: ?(?P<d>[0-9]{1,2}) ?日)?")

# Paragraph-level ordinals (GB/T 9704 7.3.3: 一、 （一） 1. （1）); 第…章/条 opens a new scope.
_CN_DIGITS = "一二三四五六七八九"
_ORDINAL = re.compile(
    r"^[ \t\u3000]*(?:"
    r"(?P<head>第[一二三四五六七八九十百零〇两]+[编章节条])"
    r"|(?P<l1>[一二三四五六七八九十]{1,3})、"
    r"|[（(](?P<l2>[一二三四五六七八九十]{1,3})[）)]"
    r"|(?P<l3>[0-9]{1,2})(?:[.．](?![0-9])|、)"
    r"|[（(](?P<l4>[0-9]{1,2})[）)]"
    r")",
    re.MULTILINE,
)
_LEVELS = ("l1", "l2", "l3", "l4")


def _half_width(text: str) -> Iterator[Finding]:
    for m in _HALF_WIDTH.finditer(text):
        full = _FULL_WIDTH[m.group()]
        yield finding(text, m.start(), m.end(), KIND, "info", full, RULE_HALF_WIDTH)


def _repeated(text: str) -> Iterator[Finding]:
    for m in _REPEATED.finditer(text):
        yield finding(text, m.start(), m.end(), KIND, "warn", m.group(1), RULE_REPEATED)


def _unpaired(text: str) -> Iterator[Finding]:
    """Brackets are paired within a paragraph; the unmatched one is flagged."""
    stack: list[tuple[str, int]] = []
    paragraph = 0
    for m in _BRACKET.finditer(text):
        ch, at = m.group(), m.start()
        if ch == "\n":
            yield from (_lone(text, i, c) for c, i in stack)
            stack.clear()
            paragraph = at + 1
        elif ch in _OPENERS:
            stack.append((ch, at))
        elif stack and stack[-1][0] == _CLOSERS[ch]:
            stack.pop()
        elif any(c == _CLOSERS[ch] for c, _ in stack):
            while stack[-1][0] != _CLOSERS[ch]:  # the openers skipped over were never closed
                yield _lone(text, stack[-1][1], stack[-1][0])
                stack.pop()
            stack.pop()
        elif ch == "’" and 0 < at < len(text) - 1 and (text[at - 1] + text[at + 1]).isascii():
            continue  # an apostrophe in English words ("China’s")
        elif ch == "）" and _LONE_MARKER.fullmatch(text, paragraph, at):
            continue  # "1）…" at the start of a paragraph
        else:
            yield _lone(text, at, ch)
    yield from (_lone(text, i, c) for c, i in stack)


def _lone(text: str, at: int, ch: str) -> Finding:
    return finding(text, at, at + 1, KIND, "warn", "", RULE_UNPAIRED)


def _dates(text: str) -> Iterator[Finding]:
    if "月" not in text:
        return
    for m in _DATE.finditer(text):
        year, day = m.group("y"), m.group("d")
        if year is None and day is None:
            continue
        month = int(m.group("m"))
        if not 1 <= month <= 12:
            yield finding(text, m.start(), m.end(), KIND, "warn", "", RULE_DATE)
        elif day is not None:
            # Without a year, 2月29日 may be right (2001 is any year that is not a leap year).
            leap_unknown = month == 2 and not year
            last = 29 if leap_unknown else calendar.monthrange(int(year or 2001), month)[1]
            if not 1 <= int(day) <= last:
                yield finding(text, m.start(), m.end(), KIND, "warn", "", RULE_DATE)


def chinese_number(numeral: str) -> int | None:
    """一 … 九十九 as an int; None for anything else (一一, 十十)."""
    if numeral == "十":
        return 10
    if len(numeral) == 1:
        return _CN_DIGITS.index(numeral) + 1
    if "十" not in numeral:
        return None
    tens, units = numeral.split("十", 1)
    if len(tens) > 1 or len(units) > 1 or "十" in units:
        return None
    ten = _CN_DIGITS.index(tens) + 1 if tens else 1
    return ten * 10 + (_CN_DIGITS.index(units) + 1 if units else 0)


def _chinese(n: int) -> str:
    tens, units = divmod(n, 10)
    return ("" if tens == 0 else ("十" if tens == 1 else _CN_DIGITS[tens - 1] + "十")) + (
        _CN_DIGITS[units - 1] if units else ""
    )


def _ordinals(text: str) -> Iterator[Finding]:
    """Each level counts 1, 2, 3 … within its parent; a gap or a repeat is flagged with the
    expected marker. A fresh 1 always starts a new list (an unmarked heading may precede it)."""
    last: dict[str, int] = {}
    for m in _ORDINAL.finditer(text):
        if m.group("head"):
            last.clear()
            continue
        level = m.lastgroup
        assert level is not None
        raw = m.group(level)
        number = int(raw) if level in ("l3", "l4") else chinese_number(raw)
        if number is None:
            continue
        for deeper in _LEVELS[_LEVELS.index(level) + 1 :]:
            last.pop(deeper, None)
        previous = last.get(level)
        last[level] = number  # count on from what is written: one slip is flagged once
        if previous is None or number == 1 or number == previous + 1:
            continue
        expected = previous + 1
        marker = text[m.start(level) - (1 if level in ("l2", "l4") else 0) : m.end()]
        shown = _chinese(expected) if level in ("l1", "l2") else str(expected)
        suggestion = marker.replace(raw, shown, 1)
        start = m.end() - len(marker)
        yield finding(text, start, m.end(), KIND, "warn", suggestion, RULE_ORDINAL)


def find(text: str) -> Iterator[Finding]:
    """Every format finding; the order does not matter (the engine sorts)."""
    yield from _half_width(text)
    yield from _repeated(text)
    yield from _unpaired(text)
    yield from _dates(text)
    yield from _ordinals(text)
