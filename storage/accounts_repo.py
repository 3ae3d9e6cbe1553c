"""Accounts under the update rule: config sync, CSV import, recorded posts, deadlines."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.config import AccountSettings, Settings, validation_message
from storage.account_models import Account, AccountPost
from storage.models import Draft


def period_of(account: Account, settings: Settings) -> timedelta:
    return timedelta(hours=account.period_hours or settings.freshness.period_hours)


def refresh_deadline(account: Account, settings: Settings) -> None:
    """The deadline is one period after the clock's start: the last post (an account that never
    posted counts from its registration: it is not exempt), or the end of a pause if later."""
    start = account.last_post_at or account.created_at
    if account.resumed_at is not None:
        start = max(start, account.resumed_at)
    account.deadline_at = start + period_of(account, settings)


async def sync_accounts(*, session: AsyncSession, settings: Settings, at: datetime) -> None:
    """Create or update the configured accounts (posts and deadlines are kept); give a deadline to
    any account that has none (one registered before accounts without posts counted)."""
    for configured in settings.freshness.accounts:
        await upsert_account(session=session, settings=settings, data=configured, at=at)
    for account in (await session.exec(select(Account).where(col(Account.deadline_at).is_(None)))).all():
        refresh_deadline(account, settings)
        session.add(account)
    await session.flush()


async def upsert_account(
    *, session: AsyncSession, settings: Settings, data: AccountSettings, at: datetime
) -> Account:
    account = (await session.exec(select(Account).where(Account.name == data.name))).first()
    if account is None:
        account = Account(name=data.name, created_at=at)
    account.platform = data.platform
    account.unit = data.unit
    account.owners = "|".join(data.owners)
    account.period_hours = data.period_hours
    # A pause or a 注销 made in chat outlives a restart (注销 is final); otherwise the config decides.
    kept = account.status == "closed" or (account.status == "paused" and account.paused_until is not None)
    if not kept or data.status == "closed":
        account.status = data.status
    if account.status == "closed" and account.closed_at is None:
        account.closed_at = at
    refresh_deadline(account, settings)
    session.add(account)
    await session.flush()
    return account


async def find_account(session: AsyncSession, name: str) -> Account | None:
    return (await session.exec(select(Account).where(Account.name == name))).first()


async def record_post(
    *,
    session: AsyncSession,
    settings: Settings,
    account: Account,
    posted_at: datetime,
    by: str,
    at: datetime,
    draft_id: int | None = None,
    url: str = "",
    unreviewed_reason: str = "",
) -> tuple[AccountPost, bool]:
    """Store the post; move the deadline only when it is the newest post. (the post, whether the
    deadline moved)."""
    assert account.id is not None
    post = AccountPost(
        account_id=account.id,
        posted_at=posted_at,
        draft_id=draft_id,
        url=url,
        recorded_by=by,
        recorded_at=at,
        unreviewed_reason=unreviewed_reason,
    )
    session.add(post)
    if account.last_post_at is not None and account.last_post_at >= posted_at:
        await session.flush()
        return post, False
    account.last_post_at = posted_at
    account.last_post_reviewed = not unreviewed_reason
    refresh_deadline(account, settings)
    session.add(account)
    await session.flush()
    return post, True


async def has_post_at(session: AsyncSession, account: Account, posted_at: datetime) -> bool:
    statement = select(AccountPost.id).where(
        AccountPost.account_id == account.id, AccountPost.posted_at == posted_at
    )
    return (await session.exec(statement)).first() is not None


async def accounts_by_remaining(
    session: AsyncSession, now: datetime, limit: int | None = None
) -> list[Account]:
    """Active accounts, the closest to (or furthest past) the deadline first, then paused ones
    (暂停, shown as such) by the end of their pause; closed (注销) ones are not listed."""
    statement = (
        select(Account)
        .where(col(Account.status).in_(("active", "paused")))
        .order_by(Account.status, col(Account.deadline_at), col(Account.paused_until), col(Account.name))
    )
    if limit is not None:
        statement = statement.limit(limit)
    return list((await session.exec(statement)).all())


async def closed_accounts(session: AsyncSession) -> list[Account]:
    """Accounts 注销 (out of the 14×24-hour rule for good), the most recently closed first."""
    statement = (
        select(Account)
        .where(Account.status == "closed")
        .order_by(col(Account.closed_at).desc().nulls_last(), col(Account.name))
    )
    return list((await session.exec(statement)).all())


class AccountImportError(ValueError):
    """A line of the accounts CSV could not be read (Chinese message naming the line)."""


@dataclass(frozen=True)
class ImportedAccount:
    """One line of the accounts CSV: the account and, when given, its last post."""

    data: AccountSettings
    last_post: datetime | None


# The accounts file's columns, and the Chinese headings a unit may use for them instead.
ACCOUNT_COLUMNS = {
    "name": ("名称", "账号名称"),
    "platform": ("平台",),
    "unit": ("单位", "主办单位"),
    "owners": ("负责人",),
    "period_hours": ("更新周期小时", "更新周期"),
    "last_post": ("最近更新", "最后更新"),
}
_COLUMN_OF = {alias: column for column, aliases in ACCOUNT_COLUMNS.items() for alias in (column, *aliases)}


def _account_header(header: list[str], file: str) -> list[str]:
    """The header's columns by their English names; an unknown or missing one is an error."""
    columns = []
    for heading in header:
        column = _COLUMN_OF.get(heading.strip())
        if column is None and heading.strip():
            known = "、".join(f"{c}（{a[0]}）" for c, a in ACCOUNT_COLUMNS.items())
            raise AccountImportError(f"{file} 第 1 行：不认识的列“{heading.strip()}”，可用的列：{known}")
        columns.append(column or "")
    if "name" not in columns:
        raise AccountImportError(f"{file} 第 1 行：缺少 name（名称）列")
    return columns


def read_accounts_csv(path: Path, settings: Settings) -> list[ImportedAccount]:
    """Columns: name, platform, unit, owners (userids or names separated by |), period_hours,
    last_post, or their Chinese headings (ACCOUNT_COLUMNS)."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    if not rows:
        return []
    columns = _account_header(rows[0], path.name)
    accounts = []
    for number, cells in enumerate(rows[1:], start=2):
        row = dict(zip(columns, (c.strip() for c in cells), strict=False))
        if not any(row.values()):
            continue
        name = row.get("name", "")
        if not name:
            raise AccountImportError(f"{path.name} 第 {number} 行：name（名称）列为空")
        given = [u.strip() for u in row.get("owners", "").split("|") if u.strip()]
        unknown = [u for u in given if settings.userid_for(u) is None]
        if unknown:
            raise AccountImportError(f"{path.name} 第 {number} 行：负责人 {unknown} 不在人员名单中")
        owners = tuple(settings.userid_for(u) or u for u in given)
        period = (row.get("period_hours") or "").strip()
        try:
            data = AccountSettings(
                name=name,
                platform=(row.get("platform") or "").strip(),
                unit=(row.get("unit") or "").strip(),
                owners=owners,
                period_hours=int(period) if period else None,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            column = ".".join(str(p) for p in first["loc"])
            raise AccountImportError(
                f"{path.name} 第 {number} 行 {column} 列：{validation_message(first)}"
            ) from None
        last = (row.get("last_post") or "").strip()
        posted = None
        if last:
            try:
                posted = datetime.fromisoformat(last)
            except ValueError:
                raise AccountImportError(
                    f"{path.name} 第 {number} 行：last_post 应写成 YYYY-MM-DD HH:MM"
                ) from None
            if posted.tzinfo is None:
                posted = posted.replace(tzinfo=settings.tz)
        accounts.append(ImportedAccount(data, posted))
    return accounts


async def import_accounts_csv(*, session: AsyncSession, settings: Settings, path: Path, at: datetime) -> int:
    """Upsert each account of the CSV and record its last post when the line gives one and the
    account has no post at that time yet (every start imports the file again: no duplicates)."""
    accounts = read_accounts_csv(path, settings)
    for item in accounts:
        account = await upsert_account(session=session, settings=settings, data=item.data, at=at)
        if item.last_post is not None and not await has_post_at(session, account, item.last_post):
            await record_post(
                session=session,
                settings=settings,
                account=account,
                posted_at=item.last_post,
                by="import",
                at=at,
            )
    return len(accounts)


async def published_links(
    *, session: AsyncSession, after_id: int, since: datetime
) -> list[tuple[int, str, str, str]]:
    """Links given to /published after post `after_id` and recorded after `since`, oldest
    first: (post id, url, the draft's title, the account's name)."""
    rows = await session.exec(
        select(AccountPost.id, AccountPost.url, Draft.title, Account.name)
        .join(Account, col(Account.id) == AccountPost.account_id)
        .join(Draft, col(Draft.id) == AccountPost.draft_id)
        .where(AccountPost.url != "", col(AccountPost.id) > after_id, AccountPost.recorded_at > since)
        .order_by(col(AccountPost.id))
    )
    links = []
    for post_id, url, title, account in rows.all():
        assert post_id is not None  # a stored row's primary key
        links.append((post_id, url, title, account))
    return links
