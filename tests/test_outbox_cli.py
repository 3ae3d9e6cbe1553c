"""`sanshen outbox`: stuck, failed and expired messages with reasons; retry; discard (audited)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.cli.main import main
from storage.db import init_models, make_engine, make_session_factory
from storage.models import AuditEntry, AuditHead, OutboxMessage

ROOT = Path(__file__).resolve().parent.parent


async def _seed(url: str) -> None:
    engine = make_engine(url)
    await init_models(engine)
    db = make_session_factory(engine)
    old = datetime.now(UTC) - timedelta(days=2)
    async with db() as session, session.begin():
        from storage.audit_repo import ensure_audit_head

        await ensure_audit_head(session=session)
        for status, error in (
            ("failed", "errcode 40056 invalid agentid"),
            ("expired", "errcode -1 system busy"),
            ("pending", "errcode 60020 not allow to access from your ip"),
            ("sent", ""),
        ):
            session.add(
                OutboxMessage(
                    created_at=old,
                    not_before=old,
                    op="send",
                    recipients="wangxm",
                    status=status,
                    attempts=3,
                    last_error=error,
                    payload={"touser": "wangxm", "msgtype": "text", "text": {"content": f"{status}的消息"}},
                )
            )
    await engine.dispose()


async def _read(url: str) -> tuple[list[OutboxMessage], list[AuditEntry]]:
    engine = make_engine(url)
    db = make_session_factory(engine)
    async with db() as session:
        rows = list((await session.exec(select(OutboxMessage).order_by(OutboxMessage.id))).all())  # type: ignore[arg-type]
        audit = list((await session.exec(select(AuditEntry))).all())
        assert (await session.exec(select(AuditHead))).one().last_id == len(audit)
    await engine.dispose()
    return rows, audit


def test_outbox_lists_retries_and_discards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/outbox.db"
    monkeypatch.setenv("SANSHEN_DATABASE_URL", url)
    config = str(ROOT / "config.example.toml")
    asyncio.run(_seed(url))

    assert main(["outbox", "-c", config]) == 0
    listing = capsys.readouterr().out
    assert "#1 失败" in listing and "40056" in listing
    assert "#2 已过期" in listing and "#3 待重试" in listing and "60020" in listing
    assert "#4" not in listing

    assert main(["outbox", "-c", config, "--retry", "2"]) == 0
    assert "重新排队" in capsys.readouterr().out
    assert main(["outbox", "-c", config, "--discard", "1"]) == 2, "who and why are required"
    assert main(["outbox", "-c", config, "--discard", "1", "--reason", "接收人已离职", "--by", "chenfb"]) == 0
    assert "审计日志" in capsys.readouterr().out
    assert main(["outbox", "-c", config, "--retry", "4"]) == 1, "a sent message is not sent again"

    rows, audit = asyncio.run(_read(url))
    assert rows[1].status == "pending" and rows[1].retried_at is not None
    assert rows[0].status == "discarded"
    (entry,) = audit
    assert (entry.actor, entry.action) == ("chenfb", "outbox_discard")
    assert entry.details["reason"] == "接收人已离职" and entry.details["outbox_id"] == 1
