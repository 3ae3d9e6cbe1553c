"""Account commands: /accounts (账号) by time remaining and admin upkeep, /published, /posted."""

from __future__ import annotations

from datetime import datetime

from bot import views
from bot.core.config import AccountSettings
from bot.core.errors import UserFacingError
from bot.services.review import load_draft
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from handlers.args import parse_number
from storage.accounts_repo import accounts_by_remaining, find_account, record_post, upsert_account
from storage.audit_repo import append_audit

router = Router("accounts")

ACCOUNTS_USAGE = (
    "/accounts；管理员：/accounts add 名称 平台 负责人userid…，/accounts pause|resume|close 名称"
)
PUBLISHED_USAGE = "/published 编号 账号名称 [链接]"
POSTED_USAGE = "/posted 账号名称 [YYYY-MM-DD HH:MM]"


def is_admin(ctx: Context) -> bool:
    return ctx.member is not None and "admin" in ctx.member.roles


async def account_or_error(ctx: Context, name: str):  # type: ignore[no-untyped-def]
    account = await find_account(ctx.session, name)
    if account is None:
        raise UserFacingError(f"没有名为“{name}”的账号。发送 /accounts 查看全部账号。")
    return account


@router.command("accounts", aliases=("账号",), usage=ACCOUNTS_USAGE, summary="新媒体账号按更新期限排列；管理员可增改")
async def on_accounts(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        accounts = await accounts_by_remaining(ctx.session, ctx.now())
        if not accounts:
            ctx.reply_text("还没有登记账号。管理员可发送 /accounts add 名称 平台 负责人userid。")
            return
        lines = [f"【账号更新情况】共 {len(accounts)} 个（期限按最后更新 + 周期计算）："]
        lines += [f"{n}. {views.account_line(a, ctx.settings, ctx.now())}" for n, a in enumerate(accounts, start=1)]
        ctx.reply_text("\n".join(lines))
        return
    if not is_admin(ctx):
        raise UserFacingError("只有管理员可以增改账号。")
    action, rest = cmd.argv[0], cmd.argv[1:]
    now = ctx.now()
    if action in ("add", "添加") and len(rest) >= 3:
        name, platform, owners = rest[0], rest[1], tuple(rest[2:])
        unknown = [u for u in owners if u not in ctx.staff]
        if unknown:
            raise UserFacingError(f"负责人 {'、'.join(unknown)} 不在人员名单中。")
        if await find_account(ctx.session, name) is not None:
            raise UserFacingError(f"账号“{name}”已存在。")
        await upsert_account(session=ctx.session, settings=ctx.settings,
                             data=AccountSettings(name=name, platform=platform, owners=owners), at=now)
        await append_audit(session=ctx.session, at=now, actor=ctx.user, action="account_add",
                           details={"name": name, "platform": platform, "owners": list(owners)})
        ctx.reply_text(f"已登记账号“{name}”（{platform}），负责人：{views.names(owners, {m.userid: m.name for m in ctx.settings.staff})}。"
                       f"首次更新后请发送 /posted {name}。")
        return
    states = {"pause": "paused", "暂停": "paused", "resume": "active", "恢复": "active", "close": "closed", "关闭": "closed"}
    if action in states and len(rest) == 1:
        account = await account_or_error(ctx, rest[0])
        account.status = states[action]
        ctx.session.add(account)
        await append_audit(session=ctx.session, at=now, actor=ctx.user, action="account_status",
                           details={"name": account.name, "status": account.status})
        label = {"paused": "已暂停考核", "active": "已恢复考核", "closed": "已关闭"}[account.status]
        ctx.reply_text(f"账号“{account.name}”{label}。")
        return
    raise UserFacingError(views.usage(ACCOUNTS_USAGE))


@router.command("published", aliases=("已发布",), usage=PUBLISHED_USAGE, summary="登记已通过三审的稿件已在某账号发布",
                roles=("publisher",))
async def on_published(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) not in (2, 3):
        raise UserFacingError(views.usage(PUBLISHED_USAGE))
    draft = await load_draft(ctx, parse_number(cmd.argv[0], PUBLISHED_USAGE), lock=False)
    if draft.status != "approved":
        status = views.STATUS_LABELS.get(draft.status, draft.status)
        raise UserFacingError(f"{views.draft_label(draft)}当前为“{status}”，未通过三审的稿件不能发布。")
    account = await account_or_error(ctx, cmd.argv[1])
    url = cmd.argv[2] if len(cmd.argv) == 3 else ""
    if url and not url.startswith(("http://", "https://")):
        raise UserFacingError("链接应以 http:// 或 https:// 开头。用法：" + PUBLISHED_USAGE)
    now = ctx.now()
    await record_post(session=ctx.session, settings=ctx.settings, account=account, posted_at=now,
                      by=ctx.user, at=now, draft_id=draft.id, url=url)
    await append_audit(session=ctx.session, at=now, actor=ctx.user, action="published", draft_id=draft.id,
                       details={"account": account.name, "url": url, "version": draft.version})
    ctx.reply_text(f"已登记：{views.draft_label(draft)}已在“{account.name}”发布。{views.account_line(account, ctx.settings, now)}")
    if draft.submitter_userid != ctx.user:
        ctx.outbox.send_text([draft.submitter_userid], f"{views.draft_label(draft)}已在“{account.name}”发布。")


@router.command("posted", aliases=("已更新",), usage=POSTED_USAGE, summary="登记账号已更新（默认现在）")
async def on_posted(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        raise UserFacingError(views.usage(POSTED_USAGE))
    account = await account_or_error(ctx, cmd.argv[0])
    if ctx.user not in account.owner_list and not is_admin(ctx):
        raise UserFacingError(f"只有“{account.name}”的负责人或管理员可以登记更新。")
    now = ctx.now()
    posted_at = now
    if len(cmd.argv) > 1:
        text = " ".join(cmd.argv[1:])
        try:
            posted_at = datetime.fromisoformat(text).replace(tzinfo=ctx.settings.tz)
        except ValueError:
            raise UserFacingError(f"时间“{text}”应写成 YYYY-MM-DD HH:MM。用法：{POSTED_USAGE}") from None
        if posted_at > now:
            raise UserFacingError("更新时间不能晚于现在。")
    moved = await record_post(session=ctx.session, settings=ctx.settings, account=account, posted_at=posted_at,
                              by=ctx.user, at=now)
    await append_audit(session=ctx.session, at=now, actor=ctx.user, action="posted",
                       details={"account": account.name, "posted_at": posted_at.isoformat()})
    note = "" if moved else "（早于已登记的最后更新，期限不变）"
    ctx.reply_text(f"已登记“{account.name}”更新{note}。{views.account_line(account, ctx.settings, now)}")
