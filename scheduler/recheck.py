"""发布后复核 on the scheduler: a re-check not done by its due time is reported to its assignees
and the admins once, then its assignees are reminded once a day until it is done."""

from __future__ import annotations

from sqlmodel import col, select

from bot.rules.calendar import fmt_local, people_with_role
from bot.views import draft_label, names
from bot.wecom.outbox import Outbox
from scheduler.sweeper import SweepContext
from storage.account_models import Recheck
from storage.models import Draft


async def overdue_rechecks(ctx: SweepContext) -> int:
    """Each open re-check past its due time: 【复核超时】 once (assignees and admins), then a
    daily 【复核提醒】 to the assignees; each claimed, so two instances send it once."""
    settings = ctx.settings
    admins = people_with_role(settings, "admin")
    fired = 0
    async with ctx.db() as session, session.begin():
        outbox = Outbox(session, ctx.clock)
        rows = await session.exec(
            select(Recheck)
            .where(col(Recheck.done_at).is_(None), Recheck.due_at <= ctx.now)
            .order_by(col(Recheck.id))
        )
        for recheck in rows.all():
            assert recheck.id is not None
            day = await ctx.claim_day_past(session, "recheck_overdue", str(recheck.id), recheck.due_at)
            if day is None:
                continue
            draft = await session.get(Draft, recheck.draft_id)
            label = f"{draft_label(draft) if draft else f'稿件{recheck.draft_id}号'}在“{recheck.account}”"
            due = fmt_local(recheck.due_at, settings.tz)
            if day == 0:
                who = names(recheck.assignee_list, settings.staff_names)
                outbox.send_text(
                    list(dict.fromkeys([*recheck.assignee_list, *admins])),
                    f"【复核超时】{label}发布后应于 {due} 前复核（{who}负责），至今未完成。"
                    f"请尽快复核：/recheck {recheck.id} 无误，或 /recheck {recheck.id} 问题 说明。",
                )
            else:
                outbox.send_text(
                    recheck.assignee_list,
                    f"【复核提醒】{label}的发布后复核已超时 {day} 天（应于 {due} 前完成），"
                    f"请尽快完成：/recheck {recheck.id} 无误，或 /recheck {recheck.id} 问题 说明。",
                )
            fired += 1
    return fired


SWEEPS = (overdue_rechecks,)
