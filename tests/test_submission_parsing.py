"""Submission metadata lines, command parsing and message splitting."""

from __future__ import annotations

import pytest

from bot.core.config import ReviewSettings
from bot.rules.submission import SubmissionError, parse_submission
from bot.wecom.dispatcher import CommandTable
from bot.wecom.outbox import split_utf8
from handlers import all_routers

DEFAULTS = ReviewSettings()


def test_submission_metadata_lines_are_read_and_removed() -> None:
    meta, body = parse_submission("转载：人民网\n公开：依申请公开\n平台：政务新媒体、其他\n\n正文第一段", DEFAULTS)
    assert (meta.source_kind, meta.source_note, meta.category) == ("reprint", "人民网", "reprint")
    assert meta.disclosure == "on_request"
    assert meta.platforms == ("newmedia", "other")
    assert body == "正文第一段"


def test_submission_defaults_apply_when_lines_are_missing() -> None:
    meta, body = parse_submission("只有正文：来源不明的一句话", DEFAULTS)
    assert (meta.source_kind, meta.disclosure, meta.platforms, meta.category) == (
        "own", "active", ("website",), "issued")
    assert body == "只有正文：来源不明的一句话"


@pytest.mark.parametrize("line", ["来源：外星", "公开：半公开", "平台：报纸", "类别：机密类", "转载："])
def test_submission_bad_metadata_is_explained(line: str) -> None:
    with pytest.raises(SubmissionError):
        parse_submission(line + "\n正文", DEFAULTS)


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
    text = "\n".join("第%d段：" % i + "防汛" * 150 for i in range(20))
    chunks = split_utf8(text)
    assert len(chunks) > 1
    assert all(len(c.encode()) <= 2048 for c in chunks)
    assert "".join(chunks).replace("\n", "") == text.replace("\n", "")
    long_line = "字" * 3000
    assert "".join(split_utf8(long_line)) == long_line
