"""Logs: JSON lines when asked for, secrets and single-use codes masked, and even at DEBUG no
message body or response code is written."""

from __future__ import annotations

import json
import logging

import pytest
from sqlmodel import select

from bot.cli.stack import Stack
from bot.core.log import setup_logging
from storage.models import ApprovalCard
from tests.flow import say, tap
from tests.test_review_flow import SUBMISSION


@pytest.fixture
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_and_a_redacted_message(
    capsys: pytest.CaptureFixture[str], restore_logging: object
) -> None:
    setup_logging("DEBUG", ["the-app-secret-value"], "json")
    log = logging.getLogger("sanshen.test")
    log.info("gettoken?corpid=ww1&corpsecret=the-app-secret-value failed")
    log.debug('answer {"errcode": 0, "response_code": "RESP-CODE-1"}')
    try:
        raise ValueError("坏数据")
    except ValueError:
        log.exception("处理失败 for %s", "wangxm")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["level"], line["logger"]) for line in lines] == [
        ("INFO", "sanshen.test"),
        ("DEBUG", "sanshen.test"),
        ("ERROR", "sanshen.test"),
    ]
    assert lines[0]["message"] == "gettoken?corpid=ww1&corpsecret=*** failed"
    assert "RESP-CODE-1" not in lines[1]["message"]
    assert lines[2]["message"] == "处理失败 for wangxm" and "ValueError: 坏数据" in lines[2]["exception"]
    assert all(line["time"].endswith("+00:00") for line in lines)


def test_text_lines_read_as_loggings_own_and_mask_what_they_must(
    capsys: pytest.CaptureFixture[str], restore_logging: object
) -> None:
    """The text format: logging's own line (local time with milliseconds), each secret pattern
    masked where it appears, other lines untouched."""
    setup_logging("INFO", ["the-app-secret-value"], "text")
    log = logging.getLogger("sanshen.test")
    lines = [
        "gettoken?corpid=ww1&corpsecret=the-app-secret-value failed",
        'answer {"errcode": 0, "response_code": "RESP-CODE-1"}',
        "GET /ical/abcdef0123456789.ics 200",
        "a = b, nothing secret",
        "tap by wangxm on card 7 applied",
    ]
    records: list[logging.LogRecord] = []
    for line in lines:
        record = log.makeRecord(log.name, logging.INFO, __file__, 1, line, None, None)
        record.created = 1_796_000_000 + len(records) * 0.7  # two lines in some seconds, one in others
        record.msecs = (record.created % 1) * 1000
        records.append(record)
        log.handle(record)
    written = capsys.readouterr().err.splitlines()
    own = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    assert [w.split(" INFO ")[0] for w in written] == [own.formatTime(r) for r in records]
    assert [w.split("sanshen.test: ", 1)[1] for w in written] == [
        "gettoken?corpid=ww1&corpsecret=*** failed",
        'answer {"errcode": 0, "response_code": "***"}',
        "GET /ical/***.ics 200",
        "a = b, nothing secret",
        "tap by wangxm on card 7 applied",
    ]


async def test_debug_logs_no_message_body_and_no_response_code(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    async with stack.db() as session:
        cards = (await session.exec(select(ApprovalCard))).all()
    codes = [card.response_code for card in cards if card.response_code]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) > 5  # the run was logged at DEBUG
    assert "为提高防汛应急处置能力" not in logged and "防汛演练的通知" not in logged
    assert codes and not any(code in logged for code in codes)
