"""The accounts service: register and pause/resume/close accounts, record posts and publications."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import views
from bot.core.config import AccountSettings, Settings
from bot.core.errors import UserFacingError, refuse_if_longer
from bot.rules.calendar import end_of_day, fmt_local, local_at, local_day
from bot.services.recheck import open_recheck
from bot.services.review import load_draft, staff_names
from bot.services.scope import Scope, is_admin
from storage.account_models import Account, AccountPause
from storage.accounts_repo import find_account, period_of, record_post, refresh_deadline, upsert_account
from storage.audit_repo import append_audit

STATUS_DONE = {"active": "已恢复考核", "closed": "已注销，不再考核"}
MAX_REASON = 200  # AccountPause.reason and AccountPost.unreviewed_reason
MAX_URL = 500  # AccountPost.url


@dataclass(frozen=True)
class AccountDone:
    """The account a service acted on, and what the person who acted is told."""

    account: Account
    message: str


def require_admin(scope: Scope) -> None:
    if not is_admin(scope):
        raise UserFacingError("只有管理员可以增改账号。")


async def account_or_error(scope: Scope, name: str) -> Account:
    account = await find_account(scope.session, name)
    if account is None:
        raise UserFacingError(f"没有名为“{name}”的账号。发送 /accounts 查看全部账号。")
    return account


async def same_platform_accounts(scope: Scope, platform: str) -> list[str]:
    """The unit's own live accounts on `platform` (钦州 第二十四条（三）: 在同一平台只开设1个)."""
    return list(
        (
            await scope.session.exec(
                select(Account.name).where(
                    Account.platform == platform, Account.unit == "", Account.status != "closed"
                )
            )
        ).all()
    )


async def close_account(session: AsyncSession, account: Account, settings: Settings, at: datetime) -> None:
    """注销: the account leaves the rule for good (a pause in course ends with it)."""
    if account.status == "paused":
        await end_pause(session, account, settings, at)
    account.status, account.closed_at = "closed", at
    session.add(account)


async def add_account(
    scope: Scope, name: str, platform: str, owners: tuple[str, ...], override: str = ""
) -> AccountDone:
    """An admin registers a new account with its owners (its period comes from the settings).
    A second live account on the same platform (钦州 第二十四条（三）: 在同一平台只开设1个) is
    refused unless the admin gives a reason, which the record keeps."""
    require_admin(scope)
    unknown = [u for u in owners if u not in scope.staff]
    if unknown:
        raise UserFacingError(f"负责人 {'、'.join(unknown)} 不在人员名单中。")
    if await find_account(scope.session, name) is not None:
        raise UserFacingError(f"账号“{name}”已存在。")
    refuse_if_longer(override, MAX_REASON, "原因")
    same = await same_platform_accounts(scope, platform)
    if same and not override:
        raise UserFacingError(
            f"本单位在{platform}已有账号“{'、'.join(same)}”，同一平台原则上只开设1个政务新媒体账号（钦州 第二十四条（三））。"
            f"确需开设的，请写明理由：/accounts add {name} {platform} {' '.join(owners)} 理由：…"
        )
    now = scope.now()
    account = await upsert_account(
        session=scope.session,
        settings=scope.settings,
        data=AccountSettings(name=name, platform=platform, owners=owners),
        at=now,
    )
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="account_add",
        details={
            "name": name,
            "platform": platform,
            "owners": list(owners),
            **({"same_platform": list(same), "override": override} if same else {}),
        },
    )
    return AccountDone(
        account,
        f"已登记账号“{name}”（{platform}），负责人：{views.names(owners, staff_names(scope))}。"
        f"请在 {fmt_local(account.deadline_at or now, scope.settings.tz)} 前首次更新"
        f"（{period_of(account, scope.settings) / timedelta(days=1):g} 天期限自登记起算）。",
    )


async def set_account_status(scope: Scope, name: str, status: str) -> AccountDone:
    """An admin resumes ("active": a pause ends early) or closes ("closed", 注销, for good) an
    account; a pause goes through pause_account."""
    require_admin(scope)
    account = await account_or_error(scope, name)
    if account.status == "closed":
        raise UserFacingError(f"账号“{account.name}”已注销，不能再更改。需要时请重新登记一个账号。")
    now = scope.now()
    if status == "active" and account.status != "paused":
        raise UserFacingError(f"账号“{account.name}”没有暂停考核，无需恢复。")
    if status == "closed":
        await close_account(scope.session, account, scope.settings, now)
    else:
        await end_pause(scope.session, account, scope.settings, now)
    scope.session.add(account)
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="account_status",
        details={"name": account.name, "status": account.status},
    )
    line = f"{views.account_line(account, scope.settings, now)}" if status == "active" else ""
    return AccountDone(account, f"账号“{account.name}”{STATUS_DONE[account.status]}。{line}")


async def pause_account(scope: Scope, name: str, last_day: date, reason: str) -> AccountDone:
    """An admin takes an account offline for a while (临时下线): through the end of `last_day`,
    for a reason, within the configured length and number a year; no alarms meanwhile, the
    14×24-hour clock starting afresh when it ends."""
    require_admin(scope)
    account = await account_or_error(scope, name)
    limits, tz, now = scope.settings.freshness, scope.settings.tz, scope.now()
    if account.status != "active":
        state = "已暂停考核" if account.status == "paused" else "已注销"
        raise UserFacingError(f"账号“{account.name}”{state}，不能再暂停。")
    if not reason:
        raise UserFacingError("暂停考核须写明原因（如：平台改版临时下线）。")
    refuse_if_longer(reason, MAX_REASON, "原因")
    until = end_of_day(last_day, tz)
    today = local_day(now, tz)
    if last_day < today:
        raise UserFacingError(f"暂停截止日期 {last_day:%Y-%m-%d} 已过。")
    if until - now > timedelta(days=limits.pause_max_days):
        latest = local_day(now + timedelta(days=limits.pause_max_days), tz) - timedelta(days=1)
        raise UserFacingError(
            f"临时下线不得超过 {limits.pause_max_days} 天（钦州 第二十六条），最晚只能暂停到 {latest:%Y-%m-%d}。"
        )
    year_start = local_at(date(today.year, 1, 1), "00:00", tz)
    earlier = (
        await scope.session.exec(
            select(AccountPause.started_at)
            .where(AccountPause.account_id == account.id, col(AccountPause.started_at) >= year_start)
            .order_by(col(AccountPause.started_at))
        )
    ).all()
    if len(earlier) >= limits.pauses_per_year:
        when = "、".join(fmt_local(t, tz, "%m-%d") for t in earlier) or "—"
        raise UserFacingError(
            f"账号“{account.name}”今年已暂停 {len(earlier)} 次（{when}），每年最多 {limits.pauses_per_year} 次"
            "（钦州 第二十六条）。确需长期停止更新的，请办理注销：/accounts close 名称。"
        )
    assert account.id is not None
    scope.session.add(
        AccountPause(account_id=account.id, started_at=now, until=until, reason=reason, started_by=scope.user)
    )
    account.status, account.paused_until, account.pause_reason = "paused", until, reason
    scope.session.add(account)
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="account_pause",
        details={"name": account.name, "until": until.isoformat(), "reason": reason},
    )
    return AccountDone(
        account,
        f"账号“{account.name}”暂停考核至 {last_day:%Y-%m-%d}（{reason}），期间不提醒、不告警；"
        f"到期自动恢复，届时重新计算 {period_of(account, scope.settings) / timedelta(days=1):g} 天更新期限。",
    )


async def end_pause(session: AsyncSession, account: Account, settings: Settings, at: datetime) -> None:
    """The pause is over (early, or at its end): the account is assessed again from `at`."""
    pause = (
        await session.exec(
            select(AccountPause).where(
                AccountPause.account_id == account.id, col(AccountPause.ended_at).is_(None)
            )
        )
    ).first()
    if pause is not None:
        pause.ended_at = at
        session.add(pause)
    account.status, account.paused_until, account.pause_reason = "active", None, ""
    account.resumed_at = at
    refresh_deadline(account, settings)
    session.add(account)


async def record_published(scope: Scope, number: int, account_name: str, url: str) -> AccountDone:
    """An approved draft went out on an account now: the account counts as updated."""
    if url and not url.startswith(("http://", "https://")):
        raise UserFacingError("链接应以 http:// 或 https:// 开头。用法：/published 编号 账号名称 [链接]")
    refuse_if_longer(url, MAX_URL, "链接")
    draft = await load_draft(scope, number, lock=False)
    if draft.status != "approved":
        status = views.STATUS_LABELS.get(draft.status, draft.status)
        raise UserFacingError(f"{views.draft_label(draft)}当前为“{status}”，未通过三审的稿件不能发布。")
    account = await account_or_error(scope, account_name)
    now = scope.now()
    post, _ = await record_post(
        session=scope.session,
        settings=scope.settings,
        account=account,
        posted_at=now,
        by=scope.user,
        at=now,
        draft_id=draft.id,
        url=url,
    )
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="published",
        draft_id=draft.id,
        details={"account": account.name, "url": url, "version": draft.version},
    )
    recheck = await open_recheck(scope, draft, post, account.name)
    if draft.submitter_userid != scope.user:
        scope.outbox.send_text(
            [draft.submitter_userid], f"{views.draft_label(draft)}已在“{account.name}”发布。"
        )
    return AccountDone(
        account,
        f"已登记：{views.draft_label(draft)}已在“{account.name}”发布。{views.account_line(account, scope.settings, now)}"
        f"\n发布后复核（{recheck.id}号）已交{views.names(recheck.assignee_list, staff_names(scope))}，"
        f"请于 {fmt_local(recheck.due_at, scope.settings.tz)} 前完成。",
    )


async def record_posted(
    scope: Scope, account_name: str, posted_at: datetime | None = None, reason: str = ""
) -> AccountDone:
    """An owner (or an admin) records that the account posted at `posted_at` (default now)
    something that did not go through review here, and why (转载上级稿件, 紧急发布 …)."""
    account = await account_or_error(scope, account_name)
    if scope.user not in account.owner_list and not is_admin(scope):
        raise UserFacingError(f"只有“{account.name}”的负责人或管理员可以登记更新。")
    now = scope.now()
    if posted_at is None:
        posted_at = now
    elif posted_at > now:
        raise UserFacingError("更新时间不能晚于现在。")
    if not reason:
        raise UserFacingError(
            "这条更新经过本系统三审了吗？经过的请用 /published 编号 账号名称 [链接] 登记；"
            f"未经本系统审核的，请写明原因：/posted {account.name} [时间] 原因（如：转载上级稿件）。"
        )
    refuse_if_longer(reason, MAX_REASON, "原因")
    _, moved = await record_post(
        session=scope.session,
        settings=scope.settings,
        account=account,
        posted_at=posted_at,
        by=scope.user,
        at=now,
        unreviewed_reason=reason,
    )
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="posted",
        details={"account": account.name, "posted_at": posted_at.isoformat(), "unreviewed": reason},
    )
    note = "" if moved else "（早于已登记的最后更新，期限不变）"
    return AccountDone(
        account,
        f"已登记“{account.name}”更新{note}，记为未经本系统审核（{reason}）。"
        f"{views.account_line(account, scope.settings, now)}",
    )
