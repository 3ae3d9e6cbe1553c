"""The exactly-once machinery under every scheduled message: occasion claims and the sweeper."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bot.cli.stack import Stack, stack_settings
from bot.core.clock import FrozenClock
from bot.core.config import Settings
from scheduler.sweeper import SweepContext, Sweeper
from storage.db import init_models, make_engine, make_session_factory
from storage.models import ProcessedCallback
from storage.occasions_repo import claim_occasion
from tests.flow import say


async def test_claim_is_won_once_by_concurrent_engines(database_url: str, clock: FrozenClock) -> None:
    engines = [make_engine(database_url) for _ in range(2)]
    await init_models(engines[0])
    factories = [make_session_factory(e) for e in engines]

    async def claim(factory: object) -> bool:
        async with factory() as session, session.begin():  # type: ignore[operator]
            won = await claim_occasion(
                session=session, kind="account_warning", subject="7", occasion="72h", at=clock.now()
            )
            await asyncio.sleep(0)  # let the other claimer run inside this transaction
            return won

    try:
        results = await asyncio.gather(*(claim(f) for f in factories * 3))
        assert sorted(results) == [False] * 5 + [True]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_rolled_back_claim_can_be_claimed_again(database_url: str, clock: FrozenClock) -> None:
    engine = make_engine(database_url)
    await init_models(engine)
    factory = make_session_factory(engine)
    try:
        async with factory() as session, session.begin():
            assert await claim_occasion(session=session, kind="k", subject="s", occasion="o", at=clock.now())
            await session.rollback()  # e.g. the outbox insert failed: nothing was sent
        async with factory() as session, session.begin():
            assert await claim_occasion(session=session, kind="k", subject="s", occasion="o", at=clock.now())
    finally:
        await engine.dispose()


async def test_one_failing_sweep_does_not_stop_the_others(sqlite_url: str, clock: FrozenClock) -> None:
    calls: list[str] = []

    async def broken(ctx: SweepContext) -> int:
        calls.append("broken")
        raise RuntimeError("boom")

    async def fine(ctx: SweepContext) -> int:
        calls.append(f"fine@{ctx.now.isoformat()}")
        return 2

    settings: Settings = stack_settings(sqlite_url)
    engine = make_engine(sqlite_url)
    kicked: list[bool] = []
    sweeper = Sweeper(
        settings=settings,
        db=make_session_factory(engine),
        clock=clock,
        sweeps=[broken, fine],
        after=lambda: kicked.append(True),
    )
    try:
        assert await sweeper.run_once() == 2
        assert calls == ["broken", f"fine@{clock.now().isoformat()}"]
        assert kicked == [True], "the sender is woken when a sweep queued messages"
    finally:
        await engine.dispose()


async def test_old_dedupe_keys_are_pruned(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    await say(stack, "wangxm", "/help", msg_id=4242)
    stack.clock.advance(days=8)
    await say(stack, "wangxm", "/help", msg_id=4343)
    await stack.sweep()
    async with stack.db() as session:
        keys = [row.key for row in (await session.exec(select(ProcessedCallback))).all()]
    assert keys == ["msg:4343"]
