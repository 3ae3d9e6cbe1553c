"""Duty-watch sweeps: roster upkeep, shift pings, handover, 日常巡检 and its 整改, incident paging, gap warnings.

Every message is guarded by a claimed Occasion in the transaction that queues it. Catch-up
after downtime is "once": only the current shift is pinged, only the current paging slot of an
incident fires, and a day's inspection/gap check happens once that day.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, date, datetime, timedelta

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import views
from bot.rules.calendar import fmt_local, last_day_of, local_at, local_day, people_with_role
from bot.services import page_check, reading
from bot.services.duty import on_duty_userids, page_incident
from bot.services.findings import lexicon_for
from bot.views import account_line, inspection_card
from bot.wecom.outbox import Outbox
from scheduler.sweeper import SweepContext
from storage import accounts_repo, duty_repo, findings_repo
from storage.account_models import Account, AccountPost
from storage.audit_repo import append_audit
from storage.duty_models import Incident, IncidentEvent, Inspection, InspectionFinding, ReadingTask, Shift
from storage.models import Draft, Occasion
from storage.occasions_repo import claim_occasion, was_claimed

log = logging.getLogger(__name__)

MATERIALISE_BACK_DAYS = 1


def names_of(ctx: SweepContext, userids: list[str]) -> str:
    return views.names(userids, ctx.settings.staff_names)


# ---------------------------------------------------------------- roster upkeep


async def keep_roster(ctx: SweepContext) -> int:
    """Materialise rotation shifts from yesterday to the gap horizon (idempotent)."""
    if not ctx.settings.duty.rotation:
        return 0
    today = local_day(ctx.now, ctx.settings.tz)
    days = [
        today + timedelta(days=k)
        for k in range(-MATERIALISE_BACK_DAYS, ctx.settings.duty.gap_horizon_days + 2)
    ]
    async with ctx.db() as session, session.begin():
        latest = (
            await session.exec(select(Shift.start_at).order_by(col(Shift.start_at).desc()).limit(1))
        ).first()
        horizon = local_at(days[-1], ctx.settings.duty.handover_time, ctx.settings.tz)
        if latest is not None and latest >= horizon:
            return 0  # already planned that far
        planned = [s for day in days for s in duty_repo.rotation_for(ctx.settings, day)]
        await duty_repo.materialise(session, planned)
    return 0


# ---------------------------------------------------------------- shift start and handover


async def shift_pings(ctx: SweepContext) -> int:
    """Ping whoever's shift is running now (once), and remind them before it ends (once)."""
    duty = ctx.settings.duty
    fired = 0
    async with ctx.db() as session, session.begin():
        outbox = Outbox(session, ctx.clock)
        current = await duty_repo.on_duty_at(session, ctx.now)
        tz = ctx.settings.tz
        for shift in current:
            assert shift.id is not None
            label = duty_repo.ROLE_LABELS.get(shift.role, shift.role)
            if await claim_occasion(
                session=session,
                kind="shift_start",
                subject=str(shift.id),
                occasion="start",
                at=ctx.now,
                by=ctx.instance,
            ):
                others = [s for s in current if s.id != shift.id]
                partners = "；".join(
                    f"{duty_repo.ROLE_LABELS.get(s.role, s.role)} {names_of(ctx, [s.userid])}" for s in others
                )
                outbox.send_text(
                    [shift.userid],
                    f"【值班提醒】您本班为{label}，{fmt_local(shift.start_at, tz)} 至 {fmt_local(shift.end_at, tz)}。"
                    + (f"同班：{partners}。" if partners else "")
                    + "请保持通讯畅通，遇突发情况按预案处置并报告带班领导。",
                )
                fired += 1
            lead = timedelta(minutes=duty.handover_reminder_minutes)
            if (
                duty.handover_reminder_minutes
                and shift.end_at - lead <= ctx.now < shift.end_at
                and await claim_occasion(
                    session=session,
                    kind="shift_handover",
                    subject=str(shift.id),
                    occasion="before_end",
                    at=ctx.now,
                    by=ctx.instance,
                )
            ):
                nxt = (
                    await session.exec(
                        select(Shift).where(Shift.role == shift.role, Shift.start_at == shift.end_at)
                    )
                ).first()
                successor = (
                    f"接班人：{names_of(ctx, [nxt.userid])}。" if nxt else "下一班尚未排班，请联系管理员。"
                )
                outbox.send_text(
                    [shift.userid],
                    f"【交接班提醒】您的{label}将于 {fmt_local(shift.end_at, tz)} 结束，请整理值班记录并做好交接。{successor}",
                )
                fired += 1
        primary = [s for s in current if s.role == "primary"]
        if (
            duty.webhook_key
            and primary
            and await claim_occasion(
                session=session,
                kind="duty_group",
                subject=str(primary[0].id),
                occasion="today",
                at=ctx.now,
                by=ctx.instance,
            )
        ):
            lines = [
                f"{duty_repo.ROLE_LABELS.get(s.role, s.role)}：{names_of(ctx, [s.userid])}" for s in current
            ]
            outbox.webhook(
                duty.webhook_key,
                {
                    "msgtype": "text",
                    "text": {
                        "content": f"今日值班（{fmt_local(primary[0].start_at, tz)} 起）\n"
                        + "\n".join(lines),
                        "mentioned_list": [s.userid for s in current],
                    },
                },
            )
            fired += 1
    return fired


# ---------------------------------------------------------------- 日常巡检


async def inspections(ctx: SweepContext) -> int:
    """Send today's inspection card at inspection_time; remind, then escalate when not done."""
    duty = ctx.settings.duty
    tz = ctx.settings.tz
    today = local_day(ctx.now, tz)
    fired = 0
    async with ctx.db() as session, session.begin():
        outbox = Outbox(session, ctx.clock)
        if ctx.now >= local_at(today, duty.inspection_time, tz):
            fired += await _send_inspection(ctx, session, outbox, today)
        due = await session.exec(
            select(Inspection).where(
                col(Inspection.done_at).is_(None),
                Inspection.due_at <= ctx.now + timedelta(minutes=duty.inspection_reminder_minutes),
                Inspection.due_at > ctx.now - timedelta(days=1),
            )
        )
        for inspection in due.all():
            assert inspection.id is not None
            if ctx.now < inspection.due_at:
                if duty.inspection_reminder_minutes and await claim_occasion(
                    session=session,
                    kind="inspection",
                    subject=inspection.day,
                    occasion="reminder",
                    at=ctx.now,
                    by=ctx.instance,
                ):
                    outbox.send_text(
                        [inspection.userid],
                        f"【巡检提醒】今日巡检尚未完成，请于 {fmt_local(inspection.due_at, tz)} 前完成并点击卡片上的“已完成”。",
                    )
                    fired += 1
            elif await claim_occasion(
                session=session,
                kind="inspection",
                subject=inspection.day,
                occasion="escalate",
                at=ctx.now,
                by=ctx.instance,
            ):
                leaders = await on_duty_userids(session, ctx.now, ("leader",)) or people_with_role(
                    ctx.settings, "leader"
                )
                outbox.send_text(
                    leaders,
                    f"【巡检超时】{inspection.day} 的日常巡检由{names_of(ctx, [inspection.userid])}负责，"
                    f"截至 {fmt_local(inspection.due_at, tz)} 仍未完成，请督促。",
                )
                outbox.send_text([inspection.userid], "【巡检超时】今日巡检已超时，已报告带班领导。")
                fired += 1
    return fired


async def _send_inspection(ctx: SweepContext, session: AsyncSession, outbox: Outbox, today: date) -> int:
    day = today.isoformat()
    if not await claim_occasion(
        session=session, kind="inspection", subject=day, occasion="card", at=ctx.now, by=ctx.instance
    ):
        return 0
    people = await on_duty_userids(session, ctx.now, ("primary",))
    if not people:
        admins = people_with_role(ctx.settings, "admin")
        outbox.send_text(admins, f"【巡检】{day} 到了巡检时间，但当前无人值班，请尽快排班。")
        return 1
    task_id = f"sanshen-insp-{day}-{secrets.token_hex(4)}"
    inspection = Inspection(
        day=day,
        userid=people[0],
        task_id=task_id,
        sent_at=ctx.now,
        due_at=ctx.now + timedelta(minutes=ctx.settings.duty.inspection_deadline_minutes),
    )
    session.add(inspection)
    await session.flush()
    assert inspection.id is not None
    published, near = await _inspection_lists(ctx, session)
    outbox.send_card([people[0]], inspection_card(task_id, inspection.id, day, published, near))
    return 1


async def _inspection_lists(ctx: SweepContext, session: AsyncSession) -> tuple[list[str], list[str]]:
    """What was published since the previous 巡检 card (a day back for the first), and the
    active accounts whose deadline is within the first warning threshold (72 h)."""
    previous = (
        await session.exec(select(func.max(Inspection.sent_at)).where(Inspection.sent_at < ctx.now))
    ).one()
    since = previous or ctx.now - timedelta(days=1)
    rows = await session.exec(
        select(AccountPost, Account.name, Draft.title)
        .join(Account, col(Account.id) == AccountPost.account_id)
        .join(Draft, col(Draft.id) == AccountPost.draft_id, isouter=True)
        .where(AccountPost.recorded_at > since, AccountPost.recorded_at <= ctx.now)
        .order_by(col(AccountPost.id))
    )
    published = [
        f"《{title}》· {account}" if title else f"{account}（未经本系统审核：{post.unreviewed_reason}）"
        for post, account, title in rows.all()
    ]
    horizon = ctx.now + timedelta(hours=max(ctx.settings.freshness.warn_hours, default=72))
    accounts = await session.exec(
        select(Account)
        .where(Account.status == "active", col(Account.deadline_at) <= horizon)
        .order_by(col(Account.deadline_at))
    )
    near = [account_line(a, ctx.settings, ctx.now) for a in accounts.all()]
    return published, near


async def published_pages(ctx: SweepContext) -> int:
    """Once today's 巡检 card is out: the links given to /published since the previous 巡检's
    check (by post id, so none is skipped or read twice), each fetched and checked by 智能识错,
    reported to the person on duty. Pages are read outside any transaction; the report is claimed
    and queued in one, so a crash before it loses nothing and two instances send one."""
    if not ctx.reads_web:
        return 0
    day = local_day(ctx.now, ctx.settings.tz).isoformat()
    async with ctx.db() as session:
        inspection = (await session.exec(select(Inspection).where(Inspection.day == day))).first()
        if inspection is None:
            return 0
        if await was_claimed(session=session, kind="inspection", subject=day, occasion="pages"):
            return 0
        through = (await session.exec(select(func.max(Inspection.pages_through)))).one() or 0
        pages_checks = select(Occasion.id).where(Occasion.kind == "inspection", Occasion.occasion == "pages")
        checked_before = (await session.exec(pages_checks.limit(1))).first() is not None
        # the very first check (a new install, an upgrade) looks one day back, not at all history
        since = datetime.min.replace(tzinfo=UTC) if checked_before else inspection.sent_at - timedelta(days=1)
        links = await accounts_repo.published_links(session=session, after_id=through, since=since)
        learned = await findings_repo.learned_terms(session=session)
    pages = [page_check.PublishedPage(url, title, account) for _, url, title, account in links]
    lexicon = lexicon_for(ctx.settings, learned)
    fetching = ctx.settings.findings
    results = (
        await page_check.check_pages(
            lexicon, pages, seconds_each=fetching.fetch_seconds, allow_private=fetching.fetch_private
        )
        if pages
        else []
    )
    async with ctx.db() as session, session.begin():
        if not await claim_occasion(
            session=session, kind="inspection", subject=day, occasion="pages", at=ctx.now, by=ctx.instance
        ):
            return 0
        inspection = await session.get(Inspection, inspection.id)
        assert inspection is not None
        inspection.pages_through = max([through, *(post_id for post_id, *_ in links)])
        session.add(inspection)
        if not results:
            return 0
        Outbox(session, ctx.clock).send_text([inspection.userid], views.page_check_report(day, results))
        await append_audit(
            session=session,
            at=ctx.now,
            actor="system",
            action="page_check",
            details={
                "day": day,
                "pages": len(results),
                "unreachable": sum(1 for r in results if r.error),
                "findings": sum(len(r.findings) for r in results),
                "severe_findings": sum(1 for r in results for f in r.findings if f.severity == "severe"),
            },
        )
    return 1


# ---------------------------------------------------------------- incidents


async def incident_pages(ctx: SweepContext) -> int:
    """Re-page unacknowledged incidents every N minutes; escalate after M minutes (once)."""
    duty = ctx.settings.duty
    repeat = timedelta(minutes=duty.incident_repeat_minutes)
    escalate_after = timedelta(minutes=duty.incident_escalate_minutes)
    names = ctx.settings.staff_names
    fired = 0
    async with ctx.db() as session, session.begin():
        outbox = Outbox(session, ctx.clock)
        due = await session.exec(
            select(Incident).where(Incident.status == "open", col(Incident.next_page_at) <= ctx.now)
        )
        for incident in due.all():
            assert incident.id is not None
            waited = ctx.now - incident.raised_at
            slot = waited // repeat  # catch up once: only the current slot fires
            incident.next_page_at = incident.raised_at + repeat * (slot + 1)
            session.add(incident)
            if await claim_occasion(
                session=session,
                kind="incident_page",
                subject=str(incident.id),
                occasion=str(slot),
                at=ctx.now,
                by=ctx.instance,
            ):
                await page_incident(
                    ctx.now, session, outbox, incident, ctx.settings, names, instance="system"
                )
                fired += 1
            if waited >= escalate_after and await claim_occasion(
                session=session,
                kind="incident_escalate",
                subject=str(incident.id),
                occasion="1",
                at=ctx.now,
                by=ctx.instance,
            ):
                leaders = people_with_role(ctx.settings, "leader")
                admins = people_with_role(ctx.settings, "admin")
                targets = list(dict.fromkeys([*leaders, *admins]))
                minutes = int(waited.total_seconds() // 60)
                outbox.send_text(
                    targets,
                    f"【突发事件上报】事件{incident.id}号（{names.get(incident.raised_by, incident.raised_by)}"
                    f"于 {fmt_local(incident.raised_at, ctx.settings.tz)} 报告）已 {minutes} 分钟无人确认收到：\n"
                    f"{incident.content}\n请立即过问处置。",
                )
                incident.escalated_at = ctx.now
                session.add(incident)
                session.add(
                    IncidentEvent(
                        incident_id=incident.id,
                        at=ctx.now,
                        kind="escalated",
                        actor="system",
                        details={"to": targets},
                    )
                )
                fired += 1
    return fired


# ---------------------------------------------------------------- gaps


async def gap_warnings(ctx: SweepContext) -> int:
    """Once a day after gap_check_time: warn admins of hours in the horizon with no 主班."""
    duty = ctx.settings.duty
    tz = ctx.settings.tz
    today = local_day(ctx.now, tz)
    if ctx.now < local_at(today, duty.gap_check_time, tz):
        return 0
    horizon_end = ctx.now + timedelta(days=duty.gap_horizon_days)
    async with ctx.db() as session, session.begin():
        shifts = [
            s for s in await duty_repo.shifts_between(session, ctx.now, horizon_end) if s.role == "primary"
        ]
        gaps = duty_repo.uncovered(
            ctx.now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1), horizon_end, shifts
        )
        if not gaps:
            return 0
        if not await claim_occasion(
            session=session,
            kind="duty_gap",
            subject="roster",
            occasion=today.isoformat(),
            at=ctx.now,
            by=ctx.instance,
        ):
            return 0
        lines = [
            f"{fmt_local(a, tz, '%m-%d %H:%M')} 至 {fmt_local(b, tz, '%m-%d %H:%M')}" for a, b in gaps[:10]
        ]
        more = f"\n……共 {len(gaps)} 段" if len(gaps) > 10 else ""
        Outbox(session, ctx.clock).send_text(
            people_with_role(ctx.settings, "admin"),
            f"【排班缺口】未来 {duty.gap_horizon_days} 天以下时段无人值班（主班）：\n"
            + "\n".join(lines)
            + more
            + "\n请用 /duty swap 或导入排班表补齐。",
        )
    return 1


# ---------------------------------------------------------------- 整改


async def rectifications_due(ctx: SweepContext) -> int:
    """An 整改 past its deadline: its assignee is reminded once a day until it is fixed, and the
    admins are told once (each claimed: two instances send it once)."""
    admins = people_with_role(ctx.settings, "admin")
    fired = 0
    async with ctx.db() as session, session.begin():
        outbox = Outbox(session, ctx.clock)
        rows = await session.exec(
            select(InspectionFinding)
            .where(
                InspectionFinding.assignee != "",
                col(InspectionFinding.fixed_at).is_(None),
                col(InspectionFinding.due_at) <= ctx.now,
            )
            .order_by(col(InspectionFinding.id))
        )
        for finding in rows.all():
            assert finding.due_at is not None
            day = await ctx.claim_day_past(session, "rectification", str(finding.id), finding.due_at)
            if day is None:
                continue
            deadline = f"{last_day_of(finding.due_at, ctx.settings.tz):%Y-%m-%d}"
            outbox.send_text(
                [finding.assignee],
                f"【整改超期】巡检问题{finding.id}号（{finding.text}）应于 {deadline} 前整改，已超期 {day} 天。"
                f"整改后请发送 /fix {finding.id} 整改情况。",
            )
            if day == 0:
                outbox.send_text(
                    [a for a in admins if a != finding.assignee],
                    f"【整改超期】巡检问题{finding.id}号（{finding.text}）由{names_of(ctx, [finding.assignee])}负责，"
                    f"应于 {deadline} 前整改，至今未完成。",
                )
            fired += 1
    return fired


# ---------------------------------------------------------------- 读网


async def reading_turns(ctx: SweepContext) -> int:
    """The 读网 turn of the current period (a day or a week), once its first day's time has come;
    a turn still open at its end is reported to its reader and the admins once (each claimed: two
    instances send it once)."""
    settings = ctx.settings
    if not settings.reading.people:
        return 0
    fired = 0
    today = local_day(ctx.now, settings.tz)
    first, last = reading.period_of(today, settings)
    # the period's turn from its first day's time on (a bot down that morning assigns it later)
    due_from = local_at(first, settings.reading.time, settings.tz)
    async with ctx.db() as session, session.begin():
        outbox = Outbox(session, ctx.clock)
        if ctx.now >= due_from and await claim_occasion(
            session=session,
            kind="reading",
            subject=first.isoformat(),
            occasion="card",
            at=ctx.now,
            by=ctx.instance,
        ):
            await reading.assign(session, outbox, settings, first, last, ctx.now)
            fired += 1
        late = await session.exec(
            select(ReadingTask).where(col(ReadingTask.done_at).is_(None), ReadingTask.due_at <= ctx.now)
        )
        for task in late.all():
            if not await claim_occasion(
                session=session,
                kind="reading",
                subject=task.period,
                occasion="overdue",
                at=ctx.now,
                by=ctx.instance,
            ):
                continue
            admins = people_with_role(settings, "admin")
            outbox.send_text(
                list(dict.fromkeys([task.userid, *admins])),
                f"【读网超期】{task.period} 起的读网（{task.section}）由{names_of(ctx, [task.userid])}负责，"
                f"至今未登记结果。请尽快完成：/read {task.id} 无误，或 /read {task.id} 问题 说明。",
            )
            fired += 1
    return fired


SWEEPS = (
    keep_roster,
    shift_pings,
    inspections,
    published_pages,
    incident_pages,
    gap_warnings,
    rectifications_due,
    reading_turns,
)
