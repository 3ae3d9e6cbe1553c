"""Views at a glance: /status, /pending (待办), /draft (稿件 timeline) and /mine (我的)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlmodel import col, func, select

from bot import views
from bot.core.errors import UserFacingError
from bot.rules.calendar import review_pending_time
from bot.rules.review import stage_of
from bot.services.review import (
    current_decisions,
    load_draft,
    may_view,
    my_pending,
    stage_people,
    start_stage,
)
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from bot.wecom.outbox import TEXT_LIMIT_BYTES
from handlers.args import parse_int, parse_number
from storage import drafts_repo
from storage.accounts_repo import accounts_by_remaining
from storage.audit_repo import entries_for_draft
from storage.duty_models import Shift
from storage.duty_repo import ROLE_LABELS, on_duty_at
from storage.models import Draft, DraftWatcher

router = Router("status")

PENDING_USAGE = "/pending [重发]"
DRAFT_USAGE = "/draft 编号"
MINE_USAGE = "/mine [页码]"
PAGE_BUDGET = TEXT_LIMIT_BYTES - 200  # room for the header and the page line


def paginate(lines: list[str], page: int) -> tuple[list[str], int]:
    """Split lines into pages that fit one WeCom message; returns (page lines, page count)."""
    pages: list[list[str]] = [[]]
    used = 0
    for line in lines:
        size = len(line.encode("utf-8")) + 1
        if pages[-1] and used + size > PAGE_BUDGET:
            pages.append([])
            used = 0
        pages[-1].append(line)
        used += size
    if not 1 <= page <= len(pages):
        raise UserFacingError(f"没有第 {page} 页（共 {len(pages)} 页）。")
    return pages[page - 1], len(pages)


def page_footer(page: int, count: int, command: str) -> str:
    if count <= 1:
        return ""
    more = f"，发送 {command} {page + 1} 查看下一页" if page < count else ""
    return f"\n（第 {page}/{count} 页{more}）"


def parse_page(cmd: Command, usage: str) -> int:
    if not cmd.argv:
        return 1
    if len(cmd.argv) != 1:
        raise UserFacingError(views.usage(usage))
    return parse_int(cmd.argv[0], usage)


# ---------------------------------------------------------------- /status


@router.command(
    "status", aliases=("状态",), usage="/status", summary="流程一览；各环节稿件、待我审核、超时、账号、值班"
)
async def on_status(ctx: Context, cmd: Command) -> None:
    now = ctx.now()
    tz = ctx.settings.tz
    rows = (await ctx.session.exec(select(Draft).where(Draft.status == "in_review"))).all()
    per_stage: Counter[str] = Counter()
    overdue = 0
    limit = timedelta(hours=ctx.settings.reminders.remind_after_hours)
    for draft in rows:
        per_stage[stage_of(ctx.settings.chain_for(draft.category, draft.important), draft.stage).name] += 1
        if review_pending_time(draft.stage_entered_at, now, ctx.settings) >= limit:  # as 催办 counts it
            overdue += 1
    returned = (
        await ctx.session.exec(select(func.count()).select_from(Draft).where(Draft.status == "rejected"))
    ).one()
    mine = await my_pending(ctx)
    lines = [f"【{ctx.settings.unit_name} 审校状态】{now.astimezone(tz):%m-%d %H:%M}"]
    stages = "，".join(f"{name} {count} 件" for name, count in sorted(per_stage.items())) or "无"
    lines.append(f"审核中：{stages}")
    lines.append(
        f"退回待修改：{returned} 件；超过 {ctx.settings.reminders.remind_after_hours:g} 小时未处理"
        + ("（按工作日计）" if ctx.settings.reminders.workdays_only else "")
        + f"：{overdue} 件"
    )
    lines.append(f"待我审核：{len(mine)} 件" + ("（发送 /pending 查看）" if mine else ""))
    lines.extend(await account_lines(ctx))
    lines.extend(await duty_lines(ctx))
    ctx.reply_text("\n".join(lines))


async def account_lines(ctx: Context) -> list[str]:
    """Accounts closest to the 14×24-hour deadline (the three nearest)."""
    accounts = await accounts_by_remaining(ctx.session, ctx.now(), limit=3)
    if not accounts:
        return ["新媒体账号：未配置"]
    parts = []
    for account in accounts:
        if account.status == "paused" or account.deadline_at is None:
            parts.append(f"{account.name}（暂停考核）")
            continue
        left = account.deadline_at - ctx.now()
        hours = int(left.total_seconds() // 3600)
        parts.append(
            f"{account.name}（已超期 {-hours} 小时）" if hours < 0 else f"{account.name}（剩 {hours} 小时）"
        )
    return ["账号更新临近期限：" + "，".join(parts)]


async def duty_lines(ctx: Context) -> list[str]:
    shifts = await on_duty_at(ctx.session, ctx.now())
    if not shifts:
        return ["当前值班：无人（请管理员排班）"]
    return ["当前值班：" + "，".join(f"{shift_role(s)} {ctx.name_of(s.userid)}" for s in shifts)]


def shift_role(shift: Shift) -> str:
    return ROLE_LABELS.get(shift.role, shift.role)


# ---------------------------------------------------------------- /pending


@router.command(
    "pending", aliases=("待办",), usage=PENDING_USAGE, summary="待我审核的稿件（加“重发”重新发送审核卡片）"
)
async def on_pending(ctx: Context, cmd: Command) -> None:
    resend = cmd.args.strip() in ("重发", "resend")
    if cmd.args.strip() and not resend:
        raise UserFacingError(views.usage(PENDING_USAGE))
    mine = await my_pending(ctx)
    if not mine:
        ctx.reply_text("您目前没有待审核的稿件。")
        return
    tz = ctx.settings.tz
    lines = [f"待您审核 {len(mine)} 件："]
    for draft, stage_name in mine:
        lines.append(
            f"{draft.id}号《{draft.title}》{stage_name}，{views.local(draft.stage_entered_at, tz)} 起等待"
        )
    if resend:
        for draft, _ in mine:
            await start_stage(ctx, draft, await current_decisions(ctx, draft), only=(ctx.user,))
        lines.append("审核卡片已重新发送。")
    else:
        lines.append("发送 /pending 重发 可重新收到审核卡片。")
    shown, count = paginate(lines, 1)
    ctx.reply_text("\n".join(shown) + page_footer(1, count, "/pending"))


# ---------------------------------------------------------------- /draft


@router.command(
    "draft", aliases=("稿件",), usage=DRAFT_USAGE + " [页码]", summary="稿件详情：当前环节、各版本与审核记录"
)
async def on_draft(ctx: Context, cmd: Command) -> None:
    if not cmd.argv or len(cmd.argv) > 2:
        raise UserFacingError(views.usage(DRAFT_USAGE))
    number = parse_number(cmd.argv[0], DRAFT_USAGE)
    page = parse_int(cmd.argv[1], DRAFT_USAGE) if len(cmd.argv) == 2 else 1
    draft = await load_draft(ctx, number, lock=False)
    if not await may_view(ctx, draft):
        raise UserFacingError(
            f"您无权查看{views.draft_label(draft)}（仅投稿人、审核人、抄送人和负责人可查看）。"
        )
    chain = ctx.settings.chain_for(draft.category, draft.important)
    status = views.STATUS_LABELS.get(draft.status, draft.status)
    lines = [
        f"{views.draft_label(draft)}",
        f"状态：{status}"
        + (f"，当前{stage_of(chain, draft.stage).name}" if draft.status == "in_review" else ""),
        f"投稿人：{draft.submitter_name}；类别：{views.CATEGORY_LABELS.get(draft.category, draft.category)}",
        f"来源：{views.source_label(draft)}；公开：{views.DISCLOSURE_LABELS.get(draft.disclosure, draft.disclosure)}；"
        f"平台：{views.platforms_label(draft.platforms)}",
    ]
    if draft.status == "in_review":
        people = await stage_people(ctx, chain, draft, await current_decisions(ctx, draft))
        names = ctx.settings.staff_names
        lines.append(f"当前审核人：{views.names(people.assignees, names)}")
    versions = await drafts_repo.list_versions(session=ctx.session, draft_id=draft.id or 0)
    lines.append(f"版本：共 {len(versions)} 版（第{draft.version}版为当前版本）")
    lines.append("—— 记录 ——")
    entries = await entries_for_draft(session=ctx.session, draft_id=draft.id or 0)
    lines.extend(views.describe(entry, ctx.name_of, ctx.settings.tz) for entry in entries)
    shown, count = paginate(lines, page)
    ctx.reply_text("\n".join(shown) + page_footer(page, count, f"/draft {draft.id}"))


# ---------------------------------------------------------------- /mine


@router.command("mine", aliases=("我的",), usage=MINE_USAGE, summary="我投的稿件和所处环节")
async def on_mine(ctx: Context, cmd: Command) -> None:
    page = parse_page(cmd, MINE_USAGE)
    rows = (
        await ctx.session.exec(
            select(Draft).where(Draft.submitter_userid == ctx.user).order_by(col(Draft.id).desc())
        )
    ).all()
    copied = (
        await ctx.session.exec(
            select(func.count()).select_from(DraftWatcher).where(DraftWatcher.userid == ctx.user)
        )
    ).one()
    if not rows:
        ctx.reply_text(
            "您还没有投过稿。投稿请发送：/submit 标题（正文写在下一行）"
            + (f"\n抄送给您的稿件：{copied} 件" if copied else "")
        )
        return
    lines = [f"您投的稿件（共 {len(rows)} 件）："]
    for draft in rows:
        status = views.STATUS_LABELS.get(draft.status, draft.status)
        where = status
        if draft.status == "in_review":
            where = f"{stage_of(ctx.settings.chain_for(draft.category, draft.important), draft.stage).name}中"
        lines.append(f"{draft.id}号《{draft.title}》第{draft.version}版：{where}")
    shown, count = paginate(lines, page)
    ctx.reply_text("\n".join(shown) + page_footer(page, count, "/mine"))
