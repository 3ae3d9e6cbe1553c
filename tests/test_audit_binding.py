"""The audit chain covers what the forms print, and checkpoints kept elsewhere catch a cut tail."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import update
from sqlmodel import col, delete, select

from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from storage.audit_repo import verify_audit_log, verify_checkpoints, verify_records
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
        await session.exec(update(StageDecision).where(col(StageDecision.stage) == 2)  # type: ignore[call-overload]
                           .values(reviewer_name="孙科长", reviewer_userid="sunkz"))
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
