"""The audit chain covers what the forms print, and checkpoints kept elsewhere catch a cut tail."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import col, delete, select

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from storage.audit_repo import (
    append_audit,
    ensure_audit_head,
    verify_audit_log,
    verify_checkpoints,
    verify_records,
)
from storage.db import init_models, make_engine, make_session_factory
from storage.models import AuditCheckpoint, AuditEntry, AuditHead, Draft, StageDecision
from tests.flow import count, say, tap
from tests.test_export import run_cli, write_config
from tests.test_review_flow import SUBMISSION


async def three_reviews(stack: Stack) -> None:
    await say(stack, "wangxm", SUBMISSION)
    await tap(stack, "wangxm", "同意")
    await tap(stack, "zhangkz", "同意")
    await tap(stack, "liuzr", "同意")


async def problems(stack: Stack) -> list[str]:
    async with stack.db() as session:
        assert (await verify_audit_log(session=session)).ok
        return await verify_records(session=session)


async def test_editing_a_decision_or_a_drafts_form_columns_fails_verification(stack: Stack) -> None:
    await three_reviews(stack)
    assert await problems(stack) == []
    async with stack.db() as session, session.begin():
        await session.exec(
            update(StageDecision)
            .where(col(StageDecision.stage) == 2)  # type: ignore[call-overload]
            .values(reviewer_name="孙科长", reviewer_userid="sunkz")
        )
    found = await problems(stack)
    assert len(found) == 1 and "审核记录" in found[0] and "被改动" in found[0]
    async with stack.db() as session, session.begin():
        await session.exec(update(Draft).values(title="另一个标题"))  # type: ignore[call-overload]
    assert any("标题" in p for p in await problems(stack))


async def test_a_deleted_decision_is_noticed(stack: Stack) -> None:
    await three_reviews(stack)
    async with stack.db() as session, session.begin():
        await session.exec(delete(StageDecision).where(col(StageDecision.stage) == 3))  # type: ignore[call-overload]
    assert any("已被删除" in p for p in await problems(stack))


async def test_cutting_the_tail_and_fixing_the_head_is_caught_by_the_checkpoints(
    sqlite_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints.tsv"
    settings = stack_settings(sqlite_url, {"audit": {"key": "k" * 32, "checkpoint_file": str(checkpoints)}})
    async with running_stack(settings, clock) as stack:
        await three_reviews(stack)
        await stack.sweep()  # 09:00 local is past the 00:10 checkpoint time: today's is taken
        assert count(stack, "chenfb", "【审计检查点】") == 1
        await stack.sweep()
        assert count(stack, "chenfb", "【审计检查点】") == 1, "once a day"
        line = checkpoints.read_text(encoding="utf-8").splitlines()[0].split("\t")
        async with stack.db() as session, session.begin():
            (head,) = (await session.exec(select(AuditHead))).all()
            assert int(line[1]) == head.last_id
            # Cut the last two entries and repair the head so the chain itself still verifies.
            keep = head.last_id - 2
            kept = (await session.exec(select(AuditEntry).where(AuditEntry.id == keep))).one()
            await session.exec(delete(AuditEntry).where(col(AuditEntry.id) > keep))  # type: ignore[call-overload]
            head.last_id, head.last_hash = keep, kept.hash
            session.add(head)
        async with stack.db() as session:
            assert (await verify_audit_log(session=session)).ok, "the chain alone cannot see it"
            found = await verify_checkpoints(session=session, key="k" * 32)
        assert found and "已不在日志中" in found[0]
        async with stack.db() as session, session.begin():  # hide the stored checkpoint too
            await session.exec(delete(AuditCheckpoint))  # type: ignore[call-overload]
        config = write_config(tmp_path, stack.settings.database.url)
        done = run_cli("verify-audit", "-c", str(config), "--checkpoint-file", str(checkpoints))
        assert done.returncode == 1 and "已不在日志中" in done.stdout, done.stdout + done.stderr


async def test_a_forged_checkpoint_fails_its_signature(sqlite_url: str, clock: FrozenClock) -> None:
    settings = stack_settings(sqlite_url, {"audit": {"key": "k" * 32}})
    async with running_stack(settings, clock) as stack:
        await three_reviews(stack)
        await stack.sweep()
        async with stack.db() as session, session.begin():
            await session.exec(update(AuditCheckpoint).values(mac="0" * 64))  # type: ignore[call-overload]
        async with stack.db() as session:
            found = await verify_checkpoints(session=session, key="k" * 32)
        assert found and "签名不符" in found[0]


async def chain_actions(db: Any) -> list[str]:
    async with db() as session:
        assert (await verify_audit_log(session=session)).ok
        entries = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    return [e.action for e in entries if e.actor == "tester"]


async def test_entries_undone_with_their_savepoint_or_transaction_never_join_the_chain(stack: Stack) -> None:
    now = stack.clock.now()

    async def add(session: Any, action: str) -> None:
        await append_audit(session=session, at=now, actor="tester", action=action)

    async with stack.db() as session, session.begin():
        await add(session, "kept-1")
        with contextlib.suppress(RuntimeError):
            async with session.begin_nested():
                await add(session, "undone-with-savepoint")
                raise RuntimeError
        async with session.begin_nested():
            await add(session, "kept-2")  # a savepoint released: joins at the real commit
        await add(session, "kept-3")
    with contextlib.suppress(RuntimeError):
        async with stack.db() as session, session.begin():
            await add(session, "undone-with-transaction")
            raise RuntimeError
    assert await chain_actions(stack.db) == ["kept-1", "kept-2", "kept-3"]


async def test_the_chain_takes_entries_in_the_order_their_transactions_commit(
    postgres_url: str, clock: FrozenClock
) -> None:
    engine = make_engine(postgres_url)
    try:
        await init_models(engine, seed=lambda session: ensure_audit_head(session=session))
        db = make_session_factory(engine)
        async with db() as first, first.begin():
            await append_audit(session=first, at=clock.now(), actor="tester", action="opened-first")
            async with db() as second, second.begin():
                # the first transaction is still open: the second is not held up by it
                await append_audit(session=second, at=clock.now(), actor="tester", action="committed-first")
        assert await chain_actions(db) == ["committed-first", "opened-first"]
    finally:
        await engine.dispose()
