"""催办 on the scheduler: stages pending too long are reminded, escalated, and at a hard limit
handed to admins or returned to the submitter — never approved by the machine.

Pending time counts working days only when configured (法定节假日 and 调休 aware). Nothing is
sent in quiet hours; the occasion is simply not claimed until they end, then sent once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot import views
from bot.rules.calendar import fmt_local, in_quiet_hours, people_with_role, review_pending_time
from bot.services.review import close_open_cards, waiting_on
from bot.services.scope import Work
from bot.wecom.outbox import Outbox
from scheduler.sweeper import SweepContext
from storage.audit_repo import append_audit
from storage.models import Draft
from storage.occasions_repo import claim_occasion


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


async def review_reminders(ctx: SweepContext) -> int:
    rules = ctx.settings.reminders
    if in_quiet_hours(ctx.now, ctx.settings):
        return 0
    remind_after, escalate_after = hours(rules.remind_after_hours), hours(rules.escalate_after_hours)
    repeat = hours(rules.repeat_every_hours)
    fired = 0
    async with ctx.db() as session, session.begin():
        outbox = Outbox(session, ctx.clock)
        view = Work(ctx.settings, session, ctx.clock, outbox)
        rows = await session.exec(
            select(Draft).where(
                Draft.status == "in_review", col(Draft.stage_entered_at) <= ctx.now - remind_after
            )
        )
        for draft in rows.all():
            entered = draft.stage_entered_at
            pending = review_pending_time(entered, ctx.now, ctx.settings)
            if pending < remind_after:
                continue
            stage_name, people = await waiting_on(view, draft)
            step = "p" if draft.step == "proof" else "s"
            subject = f"{draft.id}:v{draft.version}r{draft.round}{step}{draft.stage}"
            label = f"稿件{draft.id}号《{draft.title}》"
            waited = f"{pending.total_seconds() / 3600:.0f} 小时" + (
                "（按工作日计）" if rules.workdays_only else ""
            )
            details: dict[str, Any] = {
                "stage": draft.stage,
                "stage_name": stage_name,
                "pending_hours": round(pending.total_seconds() / 3600, 1),
            }
            if rules.hard_limit_hours and pending >= hours(rules.hard_limit_hours):
                if await claim_occasion(
                    session=session,
                    kind="review_hard_limit",
                    subject=subject,
                    occasion="1",
                    at=ctx.now,
                    by=ctx.instance,
                ):
                    fired += await _hard_limit(view, draft, label, stage_name, waited, people)
                continue
            if pending >= escalate_after:
                slot = (pending - escalate_after) // repeat
                if await claim_occasion(
                    session=session,
                    kind="review_escalate",
                    subject=subject,
                    occasion=str(slot),
                    at=ctx.now,
                    by=ctx.instance,
                ):
                    leaders = [
                        u for u in people_with_role(ctx.settings, "leader") if u not in people
                    ] or people_with_role(ctx.settings, "admin")
                    outbox.send_text(
                        leaders,
                        f"【催办上报】{label}在{stage_name}已等待 {waited}，审核人{views.names(people, view.settings.staff_names)}尚未处理，请督办。",
                    )
                    outbox.send_text(
                        people,
                        f"【催办】{label}在您处{stage_name}已等待 {waited}，已上报单位领导，请尽快审核。",
                    )
                    await append_audit(
                        session=session,
                        at=ctx.now,
                        actor="system",
                        action="review_escalation",
                        draft_id=draft.id,
                        details={**details, "to": leaders},
                    )
                    fired += 1
                continue
            slot = (pending - remind_after) // repeat
            if await claim_occasion(
                session=session,
                kind="review_remind",
                subject=subject,
                occasion=str(slot),
                at=ctx.now,
                by=ctx.instance,
            ):
                outbox.send_text(
                    people,
                    f"【催办】{label}自 {fmt_local(entered, ctx.settings.tz)} 起等待您{stage_name}（已 {waited}），"
                    f"请在审核卡片上处理，或发送 /approve {draft.id}、/reject {draft.id} 理由。",
                )
                await append_audit(
                    session=session,
                    at=ctx.now,
                    actor="system",
                    action="review_reminder",
                    draft_id=draft.id,
                    details={**details, "to": list(people)},
                )
                fired += 1
    return fired


async def _hard_limit(
    view: Work,
    draft: Draft,
    label: str,
    stage_name: str,
    waited: str,
    people: tuple[str, ...],
) -> int:
    rules = view.settings.reminders
    admins = people_with_role(view.settings, "admin")
    now = view.now()
    if rules.hard_limit_outcome == "return_to_submitter":
        await close_open_cards(view, draft, "超时已退回")
        draft.status = "rejected"
        draft.updated_at = now
        view.session.add(draft)
        view.outbox.send_text(
            [draft.submitter_userid],
            f"{label}在{stage_name}等待 {waited} 仍无人审核，已按规定退回。可发送 /revise {draft.id} 修改后重新送审。",
        )
        view.outbox.send_text(
            list(dict.fromkeys([*people, *admins])), f"{label}在{stage_name}超时未审，已退回投稿人。"
        )
        action = "timeout_return"
    else:
        view.outbox.send_text(
            admins,
            f"【超时未审】{label}在{stage_name}已等待 {waited}，超过上限，审核人{views.names(people, view.settings.staff_names)}。"
            "请管理员处理（可 /transfer 转审或 /return 退回）。",
        )
        action = "timeout_notify"
    await append_audit(
        session=view.session,
        at=now,
        actor="system",
        action=action,
        draft_id=draft.id,
        details={"stage": draft.stage, "stage_name": stage_name},
    )
    return 1


SWEEPS = (review_reminders,)
