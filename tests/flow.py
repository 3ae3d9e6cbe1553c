"""Test helpers: what people do on their phones (bot.cli.people) and what the database then holds."""

from __future__ import annotations

from sqlmodel import col, select

from bot.cli.people import (  # noqa: F401 - the tests import these from here
    active_card,
    button_key,
    card_click_xml,
    cards,
    current_card,
    forged_tap,
    last_text,
    say,
    tap,
    texts,
)
from bot.cli.stack import Stack
from storage.models import Draft, StageDecision

# The lines a chat submission must carry (保密审查表 注3: the submitter ticks them; nothing is
# assumed), for tests whose subject is not the metadata: f"/submit 标题\n{META}正文".
META = "来源：本机关制发\n公开：主动公开\n平台：政府网站\n"


async def decisions(stack: Stack) -> list[StageDecision]:
    async with stack.db() as session:
        rows = await session.exec(select(StageDecision).order_by(col(StageDecision.id)))
        return list(rows.all())


async def drafts(stack: Stack) -> list[Draft]:
    async with stack.db() as session:
        return list((await session.exec(select(Draft).order_by(col(Draft.id)))).all())


def count(stack: Stack, user: str, needle: str) -> int:
    """How many texts `user` received that contain `needle`."""
    return sum(needle in t for t in texts(stack, user))


async def at(stack: Stack, *, sweeps: int = 2, **delta: float) -> None:
    """Move the clock forward, then let the scheduler sweep (repeatedly, as it would)."""
    stack.clock.advance(**delta)  # type: ignore[attr-defined]
    for _ in range(sweeps):
        await stack.sweep()
