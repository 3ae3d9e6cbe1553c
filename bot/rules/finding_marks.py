"""A reviewer's marks on 智能识错 findings: the three marks, their words, and how a decision's marks read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# 已核实: looked at, it stays as it is; 已修改: corrected (in a new version or by 校); 误报: not an error.
MARK_LABELS = {"verified": "已核实", "fixed": "已修改", "false_alarm": "误报"}
MARK_WORDS = {
    "已核实": "verified",
    "核实": "verified",
    "已修改": "fixed",
    "修改": "fixed",
    "误报": "false_alarm",
}


def numbers_text(numbers: Iterable[int]) -> str:
    """Finding numbers as the answers, the timeline and the 台账 print them: 「1、3」."""
    return "、".join(str(number) for number in numbers)


def marks_text(marks: Mapping[str, str]) -> str:
    """A decision's marks (finding number → mark) as the timeline and the 台账 print them:
    「第1处误报、第3处已核实」, in the findings' order."""
    ordered = sorted(marks.items(), key=lambda item: int(item[0]))
    return "、".join(f"第{number}处{MARK_LABELS.get(mark, mark)}" for number, mark in ordered)
