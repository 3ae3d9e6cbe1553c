"""A message whose list of recipients turns out empty (a unit without admins, told of a gap in
the roster) is not queued: a message/send to nobody is refused by WeCom with 81013, and the
sender's pause for that empty list also held back every card update (found by bench/chaos.py)."""

from __future__ import annotations

from sqlmodel import select

from bot.cli.stack import DEMO_STAFF, running_stack, stack_settings
from bot.core.clock import FrozenClock
from bot.keys import SENDER
from storage.models import OutboxMessage
from tests.flow import say, tap
from tests.test_review_flow import SUBMISSION


async def test_recipients_none_queues_nothing_and_holds_no_card_update(
    sqlite_url: str, clock: FrozenClock
) -> None:
    staff = [{**person, "roles": [r for r in person["roles"] if r != "admin"]} for person in DEMO_STAFF]
    async with running_stack(stack_settings(sqlite_url, {"staff": staff}), clock) as stack:
        await stack.sweep()  # Monday 09:00: the daily roster check finds no 主班, and no admin
        await say(stack, "wangxm", SUBMISSION)
        delivered = await tap(stack, "wangxm", "同意")
        card = stack.sim.card(delivered.payload["template_card"]["task_id"])
        assert not card.is_active_for("zhaoli"), "the decided card is greyed at once"
        async with stack.db() as session:
            rows = list((await session.exec(select(OutboxMessage))).all())
        assert [r.id for r in rows if r.op == "send" and not r.recipients] == []
        assert [(r.id, r.op, r.last_error) for r in rows if r.status != "sent"] == []
        assert stack.app[SENDER].health() == ("ok", ""), "nothing waits for an administrator"
