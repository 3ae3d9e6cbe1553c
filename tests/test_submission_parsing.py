"""Submission metadata lines, command parsing and message splitting."""

from __future__ import annotations

import pytest

from bot.rules.submission import SubmissionError, parse_answer, parse_submission
from bot.wecom.dispatcher import CommandTable
from bot.wecom.outbox import split_utf8
from handlers import all_routers


def test_submission_metadata_lines_are_read_and_removed() -> None:
    answers, body = parse_submission("转载：人民网\n公开：依申请公开\n平台：政务新媒体、其他\n\n正文第一段")
    meta = answers.complete()
    assert (meta.source_kind, meta.source_note, meta.category) == ("reprint", "人民网", "reprint")
    assert meta.disclosure == "on_request"
    assert meta.platforms == ("newmedia", "other")
    assert body == "正文第一段"


def test_nothing_is_assumed_when_lines_are_missing() -> None:
    answers, body = parse_submission("只有正文：来源不明的一句话")
    assert answers.missing() == ("source", "disclosure", "platforms")
    assert body == "只有正文：来源不明的一句话"
    with pytest.raises(ValueError):
        answers.complete()
    answers, _ = parse_submission("平台：政府网站\n正文")
    assert answers.missing() == ("source", "disclosure")


@pytest.mark.parametrize("line", ["来源：外星", "公开：半公开", "平台：报纸", "类别：机密类", "转载："])
def test_submission_bad_metadata_is_explained(line: str) -> None:
    with pytest.raises(SubmissionError):
        parse_submission(line + "\n正文")


@pytest.mark.parametrize(
    ("field", "reply", "expected"),
    [
        ("source", "1", ("own", "")),
        ("source", "本机关制发", ("own", "")),
        ("source", "转载：人民网", ("reprint", "人民网")),
        ("source", "2 新华社", ("reprint", "新华社")),
        ("source", "3", ("external", "")),
        ("source", "非本机关（区政府）", ("external", "区政府")),
        ("disclosure", "2", "on_request"),
        ("disclosure", "主动公开", "active"),
        ("platforms", "1、2", ("website", "newmedia")),
        ("platforms", "其他", ("other",)),
    ],
)
def test_answers_to_the_follow_up_questions(field: str, reply: str, expected: object) -> None:
    answers, _ = parse_submission("正文")
    answered = parse_answer(field, reply, answers)  # type: ignore[arg-type]
    got = {
        "source": (answered.source_kind, answered.source_note),
        "disclosure": answered.disclosure,
        "platforms": answered.platforms,
    }[field]
    assert got == expected
    assert field not in answered.missing()


@pytest.mark.parametrize(
    ("field", "reply"),
    [
        ("source", "2"),
        ("source", "4"),
        ("disclosure", "3"),
        ("platforms", "报纸"),
        ("source", "来源：本机关制发\n正文"),
    ],
)
def test_unclear_answers_are_refused(field: str, reply: str) -> None:
    answers, _ = parse_submission("正文")
    with pytest.raises(SubmissionError):
        parse_answer(field, reply, answers)  # type: ignore[arg-type]


def test_command_table_parses_slash_and_chinese_aliases() -> None:
    table = CommandTable(all_routers())
    command, spec = table.parse("投稿 标题一\n正文") or (None, None)
    assert spec is not None and spec.name == "submit" and command.args == "标题一" and command.body == "正文"
    command, spec = table.parse("/reject 12 理由 很多") or (None, None)
    assert spec is not None and spec.name == "reject" and command.argv == ["12", "理由", "很多"]
    assert table.parse("你好，请问") is None
    command, spec = table.parse("/submti x") or (None, None)
    assert spec is None and "submit" in table.suggestions("submti")


def test_split_utf8_keeps_every_chunk_within_2048_bytes() -> None:
    text = "\n".join(f"第{i}段：" + "防汛" * 150 for i in range(20))
    chunks = split_utf8(text)
    assert len(chunks) > 1
    assert all(len(c.encode()) <= 2048 for c in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")
    long_line = "字" * 3000
    assert "".join(split_utf8(long_line)) == long_line
