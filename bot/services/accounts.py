"""The accounts service: register and pause/resume/close accounts, record posts and publications."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot import views
from bot.core.config import AccountSettings
from bot.core.errors import UserFacingError
from bot.services.review import load_draft, staff_names
from bot.services.scope import Scope, is_admin
from storage.account_models import Account
from storage.accounts_repo import find_account, record_post, upsert_account
from storage.audit_repo import append_audit

STATUS_DONE = {"paused": "已暂停考核", "active": "已恢复考核", "closed": "已关闭"}


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


async def add_account(scope: Scope, name: str, platform: str, owners: tuple[str, ...]) -> AccountDone:
    """An admin registers a new account with its owners (its period comes from the settings)."""
    require_admin(scope)
    unknown = [u for u in owners if u not in scope.staff]
    if unknown:
        raise UserFacingError(f"负责人 {'、'.join(unknown)} 不在人员名单中。")
    if await find_account(scope.session, name) is not None:
        raise UserFacingError(f"账号“{name}”已存在。")
    now = scope.now()
    account = await upsert_account(session=scope.session, settings=scope.settings,
                                   data=AccountSettings(name=name, platform=platform, owners=owners), at=now)
    await append_audit(session=scope.session, at=now, actor=scope.user, action="account_add",
                       details={"name": name, "platform": platform, "owners": list(owners)})
    return AccountDone(account, f"已登记账号“{name}”（{platform}），负责人：{views.names(owners, staff_names(scope))}。"
                                f"首次更新后请发送 /posted {name}。")


async def set_account_status(scope: Scope, name: str, status: str) -> AccountDone:
    """An admin pauses ("paused"), resumes ("active") or closes ("closed") an account."""
    require_admin(scope)
    account = await account_or_error(scope, name)
    account.status = status
    scope.session.add(account)
    await append_audit(session=scope.session, at=scope.now(), actor=scope.user, action="account_status",
                       details={"name": account.name, "status": account.status})
    return AccountDone(account, f"账号“{account.name}”{STATUS_DONE[account.status]}。")


async def record_published(scope: Scope, number: int, account_name: str, url: str) -> AccountDone:
    """An approved draft went out on an account now: the account counts as updated."""
    draft = await load_draft(scope, number, lock=False)
    if draft.status != "approved":
        status = views.STATUS_LABELS.get(draft.status, draft.status)
        raise UserFacingError(f"{views.draft_label(draft)}当前为“{status}”，未通过三审的稿件不能发布。")
    account = await account_or_error(scope, account_name)
    now = scope.now()
    await record_post(session=scope.session, settings=scope.settings, account=account, posted_at=now,
                      by=scope.user, at=now, draft_id=draft.id, url=url)
    await append_audit(session=scope.session, at=now, actor=scope.user, action="published", draft_id=draft.id,
                       details={"account": account.name, "url": url, "version": draft.version})
    if draft.submitter_userid != scope.user:
        scope.outbox.send_text([draft.submitter_userid], f"{views.draft_label(draft)}已在“{account.name}”发布。")
    return AccountDone(
        account,
        f"已登记：{views.draft_label(draft)}已在“{account.name}”发布。{views.account_line(account, scope.settings, now)}",
    )


async def record_posted(scope: Scope, account_name: str, posted_at: datetime | None = None) -> AccountDone:
    """An owner (or an admin) records that the account posted at `posted_at` (default now)."""
    account = await account_or_error(scope, account_name)
    if scope.user not in account.owner_list and not is_admin(scope):
        raise UserFacingError(f"只有“{account.name}”的负责人或管理员可以登记更新。")
    now = scope.now()
    if posted_at is None:
        posted_at = now
    elif posted_at > now:
        raise UserFacingError("更新时间不能晚于现在。")
    moved = await record_post(session=scope.session, settings=scope.settings, account=account, posted_at=posted_at,
                              by=scope.user, at=now)
    await append_audit(session=scope.session, at=now, actor=scope.user, action="posted",
                       details={"account": account.name, "posted_at": posted_at.isoformat()})
    note = "" if moved else "（早于已登记的最后更新，期限不变）"
    return AccountDone(account, f"已登记“{account.name}”更新{note}。{views.account_line(account, scope.settings, now)}")
