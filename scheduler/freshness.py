"""The 14×24-hour rule on the scheduler: warnings before the deadline, daily overdue alarms, the
end of pauses, digest.

The occasion key contains the deadline itself, so a new post (a new deadline) starts afresh.
After downtime spanning several warning thresholds, one warning goes out (for the most urgent
threshold passed); an overdue alarm fires once per day overdue, for the current day only.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.rules.calendar import fmt_local, local_at, local_day, people_with_role
from bot.services.accounts import end_pause
from bot.views import account_line, remaining_text
from bot.wecom.outbox import Outbox
from scheduler.sweeper import SweepContext
from storage.account_models import REQUEST_KIND_LABELS, Account, AccountRequest
from storage.accounts_repo import accounts_by_remaining, period_of
from storage.audit_repo import append_audit
from storage.occasions_repo import claim_occasion, was_claimed

DAY = timedelta(days=1)


async def freshness_warnings(ctx: SweepContext) -> int:
    """Warn owners as thresholds pass; alarm owners and admins daily once overdue."""
    settings = ctx.settings
    warn = settings.freshness.warn_hours  # the order does not matter: each passed one is claimed
    horizon = ctx.now + timedelta(hours=max(warn, default=0))
    admins = people_with_role(settings, "admin")
    fired = 0
    async with ctx.db() as session, session.begin():
        outbox = Outbox(session, ctx.clock)
        rows = await session.exec(
            select(Account).where(
                Account.status == "active",
                col(Account.deadline_at).is_not(None),
                col(Account.deadline_at) <= horizon,
            )
        )
        for account in rows.all():
            assert account.deadline_at is not None and account.id is not None
            left = account.deadline_at - ctx.now
            subject = f"{account.id}@{account.deadline_at.isoformat()}"
            owners = account.owner_list or admins
            period_days = period_of(account, settings).total_seconds() / 86400
            if left > timedelta(0):
                passed = [h for h in warn if left <= timedelta(hours=h)]
                claimed = [
                    h
                    for h in passed
                    if await claim_occasion(
                        session=session,
                        kind="account_warning",
                        subject=subject,
                        occasion=f"{h}h",
                        at=ctx.now,
                        by=ctx.instance,
                    )
                ]
                if claimed and min(passed) in claimed:
                    outbox.send_text(
                        owners,
                        f"【更新提醒】{account.name}（{account.platform}）距 {period_days:g} 天更新期限"
                        f"{remaining_text(left)}（期限 {fmt_local(account.deadline_at, settings.tz)}），请及时发布。"
                        f"发布后请发送 /published 编号 {account.name}（未经本系统审核的：/posted {account.name} 原因）。",
                    )
                    fired += 1
                continue
            if await ctx.claim_day_past(session, "account_overdue", subject, account.deadline_at) is not None:
                outbox.send_text(
                    list(dict.fromkeys([*owners, *admins])),
                    f"【超期告警】{account.name}（{account.platform}，{account.unit or '未填单位'}）"
                    f"超过 {period_days:g} 天未更新，{remaining_text(left)}"
                    + (
                        f"（上次更新 {fmt_local(account.last_post_at, settings.tz)}）。"
                        if account.last_post_at
                        else f"（登记于 {fmt_local(account.created_at, settings.tz)}，至今无更新记录）。"
                    )
                    + "请立即更新，每天提醒直至更新。",
                )
                fired += 1
    return fired


async def pauses_ending(ctx: SweepContext) -> int:
    """Paused accounts whose pause is over are assessed again, the clock starting at the pause's
    end; owners and admins are told once (two instances: the claim decides)."""
    settings = ctx.settings
    admins = people_with_role(settings, "admin")
    resumed = 0
    async with ctx.db() as session, session.begin():
        rows = await session.exec(
            select(Account)
            .where(
                Account.status == "paused",
                col(Account.paused_until).is_not(None),
                col(Account.paused_until) <= ctx.now,
            )
            .with_for_update()
        )
        for account in rows.all():
            until = account.paused_until
            assert until is not None and account.id is not None
            if not await claim_occasion(
                session=session,
                kind="account_resume",
                subject=str(account.id),
                occasion=until.isoformat(),
                at=ctx.now,
                by=ctx.instance,
            ):
                continue
            await end_pause(session, account, settings, until)
            await append_audit(
                session=session,
                at=ctx.now,
                actor="system",
                action="account_status",
                details={"name": account.name, "status": "active", "pause_ended": until.isoformat()},
            )
            assert account.deadline_at is not None
            told = list(dict.fromkeys([*account.owner_list, *admins]))
            Outbox(session, ctx.clock).send_text(
                told,
                f"【恢复考核】{account.name}（{account.platform}）暂停期满，已恢复更新考核："
                f"请在 {fmt_local(account.deadline_at, settings.tz)} 前更新"
                f"（{period_of(account, settings) / DAY:g} 天期限自 {fmt_local(until, settings.tz)} 起算）。",
            )
            resumed += 1
    return resumed


async def freshness_digest(ctx: SweepContext) -> int:
    """Once a day at digest_time: admins get every account by time remaining."""
    settings = ctx.settings
    today = local_day(ctx.now, settings.tz)
    if ctx.now < local_at(today, settings.freshness.digest_time, settings.tz):
        return 0
    admins = people_with_role(settings, "admin")
    if not admins:
        return 0
    async with ctx.db() as session, session.begin():
        # Sent already today: stop before reading every account (sweeps run every minute).
        if await was_claimed(
            session=session, kind="account_digest", subject="all", occasion=today.isoformat()
        ):
            return 0
        accounts = await accounts_by_remaining(session, ctx.now)
        if not accounts:
            return 0
        if not await claim_occasion(
            session=session,
            kind="account_digest",
            subject="all",
            occasion=today.isoformat(),
            at=ctx.now,
            by=ctx.instance,
        ):
            return 0
        lines = [f"【账号更新日报】{today:%m月%d日}，共 {len(accounts)} 个账号，按剩余时间排列："]
        lines += [f"{n}. {account_line(a, settings, ctx.now)}" for n, a in enumerate(accounts, start=1)]
        Outbox(session, ctx.clock).send_text(admins, "\n".join(lines))
    return 1


async def filings_due(ctx: SweepContext) -> int:
    """An approved 开设/变更/注销 not yet filed: its requester is reminded once the last day before
    the deadline begins, then daily once it has passed (the admins told once); each claimed."""
    settings = ctx.settings
    admins = people_with_role(settings, "admin")
    fired = 0
    async with ctx.db() as session, session.begin():
        outbox = Outbox(session, ctx.clock)
        rows = await session.exec(
            select(AccountRequest)
            .where(
                AccountRequest.status == "approved",
                col(AccountRequest.filed_at).is_(None),
                col(AccountRequest.filing_due_at) <= ctx.now + DAY,
            )
            .order_by(col(AccountRequest.id))
        )
        for request in rows.all():
            assert request.filing_due_at is not None and request.id is not None
            due = fmt_local(request.filing_due_at, settings.tz)
            what = f"申请{request.id}号（{REQUEST_KIND_LABELS.get(request.kind, '')}“{request.account}”）"
            how = f"完成后请发送 /accounts filed {request.id} 报送情况。"
            if ctx.now < request.filing_due_at:
                if await claim_occasion(
                    session=session,
                    kind="filing_warning",
                    subject=str(request.id),
                    occasion="1d",
                    at=ctx.now,
                    by=ctx.instance,
                ):
                    outbox.send_text(
                        [request.requested_by],
                        f"【备案提醒】{what}应于 {due} 前报批、报备，{remaining_text(request.filing_due_at - ctx.now)}。{how}",
                    )
                    fired += 1
                continue
            day = await ctx.claim_day_past(session, "filing_overdue", str(request.id), request.filing_due_at)
            if day is None:
                continue
            outbox.send_text(
                [request.requested_by], f"【备案超期】{what}应于 {due} 前报批、报备，已超期 {day} 天。{how}"
            )
            if day == 0:
                outbox.send_text(
                    [a for a in admins if a != request.requested_by],
                    f"【备案超期】{what}应于 {due} 前报批、报备，至今未登记。",
                )
            fired += 1
    return fired


SWEEPS = (pauses_ending, freshness_warnings, filings_due, freshness_digest)
