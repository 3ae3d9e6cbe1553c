"""Charts for the pages as inline SVG geometry, drawn by the templates (no script, no library):
the drafts per stage stacked by age, and each account's time before its 14×24-hour deadline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

HOUR = timedelta(hours=1)
WIDTH = 340  # user units; the SVG scales to the card's width (a 390-px phone leaves about 340 px)
NAME_CHARS = 12  # an account name longer than this is cut (with …) so its line fits beside the figure
STAGE_CHARS = 8  # the same for a stage name beside its bar


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str = ""


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    css: str = ""
    anchor: str = "start"  # start | middle | end


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str


@dataclass
class Chart:
    """One SVG: its size in user units, what it shows (its accessible name), and its shapes."""

    label: str
    height: float
    width: float = WIDTH
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


def _r(value: float) -> float:
    return round(value, 1)


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


# ---------------------------------------------------------------- drafts by stage and age

COUNT_WIDTH = 34
CHAR = 12  # the width of a Chinese character at the charts' font size
STAGE_ROW = 24
LEGEND_ROW = 22


def stacked_by_age(label: str, rows: Sequence[tuple[str, Sequence[int]]], ages: Sequence[str]) -> Chart:
    """A bar per stage, split by age bucket (`ages` names them, youngest first), its count at the end."""
    chart = Chart(label, LEGEND_ROW + STAGE_ROW * len(rows) + 4)
    x = 0.0
    for index, name in enumerate(ages):  # the legend: a swatch and the bucket's name each
        chart.rects.append(Rect(x, 5, 10, 10, f"age{index}"))
        chart.texts.append(Text(x + 14, 14, name, "legend"))
        x += 14 + CHAR * len(name) + 14
    biggest = max((sum(counts) for _, counts in rows), default=0) or 1
    names = min(max((len(name) for name, _ in rows), default=2), STAGE_CHARS) * CHAR + 8
    span = WIDTH - names - COUNT_WIDTH
    for row, (name, counts) in enumerate(rows):
        top = LEGEND_ROW + STAGE_ROW * row
        chart.texts.append(Text(0, top + 15, _cut(name, STAGE_CHARS)))
        left = float(names)
        for index, count in enumerate(counts):
            if not count:
                continue
            width = span * count / biggest
            chart.rects.append(
                Rect(_r(left), top + 4, _r(width), 14, f"age{index}", f"{name} {ages[index]}：{count} 件")
            )
            left += width
        chart.texts.append(Text(WIDTH, top + 15, f"{sum(counts)} 件", "figure", "end"))
    return chart


# ---------------------------------------------------------------- accounts' time left

ACCOUNT_ROW = 34
OVERDUE_SHARE = 0.1  # at least this much of the scale lies left of the deadline when one is overdue
AXIS_ROW = 18


@dataclass(frozen=True)
class AccountBar:
    name: str
    left: timedelta  # negative: overdue by that much
    text: str  # the figure as words (剩余 3 天 2 小时, 已超期 …)


def time_left(label: str, bars: Sequence[AccountBar], *, longest: timedelta, warn: timedelta | None) -> Chart:
    """One bar per account on a common time scale: to the right of the deadline line the time
    left (amber within `warn` of it), to its left in red how long it is overdue. `longest` is the
    longest period, the scale's right end; an overdue bar longer than that is cut at the left edge."""
    chart = Chart(label, ACCOUNT_ROW * len(bars) + AXIS_ROW + 4)
    ahead = max([longest, *(b.left for b in bars)])
    behind = min(max([timedelta(0), *(-b.left for b in bars)]), ahead)
    if behind > timedelta(0):  # room to the left of the deadline line to see an overdue bar
        behind = max(behind, ahead * OVERDUE_SHARE)
    scale = WIDTH / ((ahead + behind) / HOUR)
    zero = behind / HOUR * scale
    bottom = ACCOUNT_ROW * len(bars) + 2
    mark = _r(zero + warn / HOUR * scale) if warn is not None and warn < ahead else None
    for row, bar in enumerate(bars):
        top = ACCOUNT_ROW * row
        overdue = bar.left <= timedelta(0)
        chart.texts.append(Text(0, top + 13, _cut(bar.name, NAME_CHARS)))
        chart.texts.append(Text(WIDTH, top + 13, bar.text, "figure over" if overdue else "figure", "end"))
        length = max(min(abs(bar.left), behind if overdue else ahead) / HOUR * scale, 2.0)
        if overdue:
            css = "over"
        elif warn is not None and bar.left <= warn:
            css = "warn"
        else:
            css = "ok"
        x = zero - length if overdue else zero
        chart.rects.append(Rect(_r(x), top + 18, _r(length), 12, css, f"{bar.name}：{bar.text}"))
        # the deadline (and the first warning) as marks across the bar, clear of the names above it
        chart.lines.append(Line(_r(zero), top + 15, _r(zero), top + 33, "deadline"))
        if mark is not None:
            chart.lines.append(Line(mark, top + 15, mark, top + 33, "warnline"))
    chart.texts.append(Text(_r(zero), bottom + 14, "期限", "axis", "end" if zero > WIDTH / 2 else "start"))
    if mark is not None and warn is not None:
        chart.texts.append(Text(mark + 3, bottom + 14, f"剩 {warn / HOUR:g} 小时", "axis"))
    return chart
