"""The review lifecycle beyond 同意/不同意: 撤回, 转审, 退回, 抄送, 催办 and 代理 (away/delegate)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from sqlmodel import col, select

from bot import views
from bot.core.errors import UserFacingError
from bot.rules.review import decided_other_stages, stage_of
from bot.services.review import (
    close_open_cards,
    current_decisions,
    load_draft,
    stage_people,
    start_stage,
)
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from handlers.args import parse_number
from storage import drafts_repo
from storage.audit_repo import append_audit
from storage.models import AuditEntry, Delegation, Draft, StageAssignment

router = Router("lifecycle")

WITHDRAW_USAGE = "/withdraw 编号 [理由]"
TRANSFER_USAGE = "/transfer 编号 userid 理由"
RETURN_USAGE = "/return 编号 阶段 理由（阶段如 一审、二审）"
CC_USAGE = "/cc 编号 userid [userid…]"
REMIND_USAGE = "/remind 编号"
AWAY_USAGE = "/away 至 YYYY-MM-DD 代理 userid（取消：/away 取消）"
MAX_AWAY_DAYS = 92
STAGE_WORDS = {"一审": 1, "二审": 2, "三审": 3, "四审": 4, "五审": 5}


def is_admin(ctx: Context) -> bool:
    return ctx.member is not None and "admin" in ctx.member.roles


def require_staff_userid(ctx: Context, userid: str) -> str:
    if userid not in ctx.staff:
        raise UserFacingError(f"人员名单中没有 {userid}，请核对 userid（可在通讯录中查看）。")
    return userid


def parse_stage(word: str, stage_count: int) -> int:
    number = STAGE_WORDS.get(word) or (int(word) if word.isdigit() else 0)
    if not 1 <= number <= stage_count:
        raise UserFacingError(views.usage(RETURN_USAGE))
    return number


async def in_review(ctx: Context, number: int) -> Draft:
    draft = await load_draft(ctx, number)
    if draft.status != "in_review":
        status = views.STATUS_LABELS.get(draft.status, draft.status)
        raise UserFacingError(f"{views.draft_label(draft)}当前状态为“{status}”，不在审核中。")
    return draft


async def require_current_reviewer_or_admin(ctx: Context, draft: Draft) -> tuple[str, ...]:
    """The stage's people; raises unless the caller is one of them or an admin."""
    chain = ctx.settings.chain_for(draft.category)
    people = await stage_people(ctx, chain, draft, await current_decisions(ctx, draft))
    if ctx.user not in people.assignees and not is_admin(ctx):
        stage_name = stage_of(chain, draft.stage).name
        raise UserFacingError(
            f"只有{views.draft_label(draft)}{stage_name}的审核人或管理员可以这样做。"
        )
    return people.assignees


def reason_after(cmd: Command, skip: int) -> str:
    """Free text after the first `skip` arguments, plus any lines below the command."""
    parts = cmd.args.split(None, skip)
    tail = parts[skip] if len(parts) > skip else ""
    return " ".join(p for p in (tail.strip(), cmd.body.strip()) if p)


# ---------------------------------------------------------------- 撤回


@router.command("withdraw", aliases=("撤回",), usage=WITHDRAW_USAGE, summary="投稿人在通过三审前撤回稿件")
async def on_withdraw(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        raise UserFacingError(views.usage(WITHDRAW_USAGE))
    draft = await load_draft(ctx, parse_number(cmd.argv[0], WITHDRAW_USAGE))
    if draft.submitter_userid != ctx.user and not is_admin(ctx):
        raise UserFacingError(f"只有投稿人或管理员可以撤回{views.draft_label(draft)}。")
    if draft.status not in ("in_review", "rejected"):
        status = views.STATUS_LABELS.get(draft.status, draft.status)
        raise UserFacingError(f"{views.draft_label(draft)}当前状态为“{status}”，不能撤回。")
    reason = reason_after(cmd, 1)
    holders: tuple[str, ...] = ()
    if draft.status == "in_review":
        chain = ctx.settings.chain_for(draft.category)
        holders = (await stage_people(ctx, chain, draft, await current_decisions(ctx, draft))).assignees
    await close_open_cards(ctx, draft, "稿件已撤回")
    now = ctx.now()
    draft.status = "withdrawn"
    draft.updated_at = now
    ctx.session.add(draft)
    await append_audit(
        session=ctx.session, at=now, actor=ctx.user, action="withdraw", draft_id=draft.id,
        details={"version": draft.version, "stage": draft.stage, "reason": reason},
    )
    others = [u for u in holders if u != ctx.user]
    if others:
        ctx.outbox.send_text(others, f"{views.draft_label(draft)}已由{ctx.name_of(ctx.user)}撤回，无需再审核。")
    if draft.submitter_userid != ctx.user:
        ctx.outbox.send_text(
            [draft.submitter_userid],
            f"{views.draft_label(draft)}已由管理员{ctx.name_of(ctx.user)}撤回。{('理由：' + reason) if reason else ''}",
        )
    ctx.reply_text(f"已撤回{views.draft_label(draft)}。")


# ---------------------------------------------------------------- 转审


@router.command("transfer", aliases=("转审",), usage=TRANSFER_USAGE, summary="把当前环节转给他人审核（须写理由）")
async def on_transfer(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 2:
        raise UserFacingError(views.usage(TRANSFER_USAGE))
    number = parse_number(cmd.argv[0], TRANSFER_USAGE)
    target = require_staff_userid(ctx, cmd.argv[1])
    reason = reason_after(cmd, 2)
    if not reason:
        raise UserFacingError("转审须写明理由。用法：" + TRANSFER_USAGE)
    draft = await in_review(ctx, number)
    assignees = await require_current_reviewer_or_admin(ctx, draft)
    chain = ctx.settings.chain_for(draft.category)
    stage_name = stage_of(chain, draft.stage).name
    decisions = await current_decisions(ctx, draft)
    if target == draft.submitter_userid and draft.stage > 1:
        raise UserFacingError(f"投稿人不能审核自己稿件的{stage_name}，不能转给{ctx.name_of(target)}。")
    if target in decided_other_stages(decisions, draft.stage):
        raise UserFacingError(
            f"{ctx.name_of(target)}已审核过该稿件的其他环节，同一稿件的各审须由不同的人完成。"
        )
    if target in assignees:
        raise UserFacingError(f"{ctx.name_of(target)}已是{stage_name}的审核人。")
    if ctx.user in assignees:
        new_people = tuple(u if u != ctx.user else target for u in assignees)
    else:
        new_people = (target,)  # an admin reassigns the whole stage
    now = ctx.now()
    assert draft.id is not None
    ctx.session.add(
        StageAssignment(
            draft_id=draft.id, version=draft.version, round=draft.round, stage=draft.stage,
            assignees="|".join(new_people), reason=reason, by=ctx.user, at=now,
        )
    )
    await ctx.session.flush()
    await close_open_cards(ctx, draft, f"已转审给{ctx.name_of(target)}")
    await start_stage(ctx, draft, decisions)
    await append_audit(
        session=ctx.session, at=now, actor=ctx.user, action="transfer", draft_id=draft.id,
        details={
            "version": draft.version, "stage": draft.stage, "stage_name": stage_name,
            "from": list(assignees), "to": list(new_people), "reason": reason,
        },
    )
    ctx.outbox.send_text(
        [target], f"{ctx.name_of(ctx.user)}把{views.draft_label(draft)}的{stage_name}转给您审核。理由：{reason}"
    )
    ctx.outbox.send_text(
        [draft.submitter_userid],
        f"{views.draft_label(draft)}的{stage_name}已由{ctx.name_of(ctx.user)}转给{ctx.name_of(target)}审核。",
    )
    ctx.reply_text(f"已把{views.draft_label(draft)}的{stage_name}转给{ctx.name_of(target)}。")


# ---------------------------------------------------------------- 退回


@router.command("return", aliases=("退回",), usage=RETURN_USAGE, summary="把稿件退回到之前的环节重新审核")
async def on_return(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 2:
        raise UserFacingError(views.usage(RETURN_USAGE))
    number = parse_number(cmd.argv[0], RETURN_USAGE)
    reason = reason_after(cmd, 2)
    if not reason:
        raise UserFacingError("退回须写明理由。用法：" + RETURN_USAGE)
    draft = await in_review(ctx, number)
    chain = ctx.settings.chain_for(draft.category)
    target = parse_stage(cmd.argv[1], len(chain.stages))
    if target >= draft.stage:
        current = stage_of(chain, draft.stage).name
        raise UserFacingError(f"只能退回到当前环节（{current}）之前的环节。")
    await require_current_reviewer_or_admin(ctx, draft)
    from_name, to_name = stage_of(chain, draft.stage).name, stage_of(chain, target).name
    await close_open_cards(ctx, draft, f"已退回{to_name}")
    now = ctx.now()
    from_stage = draft.stage
    draft.round += 1
    draft.stage = target
    draft.stage_entered_at = now
    draft.updated_at = now
    ctx.session.add(draft)
    await ctx.session.flush()
    assignees = await start_stage(ctx, draft, await current_decisions(ctx, draft))
    await append_audit(
        session=ctx.session, at=now, actor=ctx.user, action="return", draft_id=draft.id,
        details={
            "version": draft.version, "from_stage": from_stage, "to_stage": target,
            "round": draft.round, "reason": reason,
        },
    )
    ctx.outbox.send_text(
        [draft.submitter_userid],
        f"{views.draft_label(draft)}在{from_name}被{ctx.name_of(ctx.user)}退回{to_name}重新审核。理由：{reason}",
    )
    names = {m.userid: m.name for m in ctx.settings.staff}
    ctx.reply_text(
        f"已把{views.draft_label(draft)}退回{to_name}，由{views.names(assignees, names)}重新审核。"
    )


# ---------------------------------------------------------------- 抄送


@router.command("cc", aliases=("抄送",), usage=CC_USAGE, summary="抄送稿件给他人（通过三审时也会通知）")
async def on_cc(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 2:
        raise UserFacingError(views.usage(CC_USAGE))
    number = parse_number(cmd.argv[0], CC_USAGE)
    targets = [require_staff_userid(ctx, u) for u in dict.fromkeys(cmd.argv[1:])]
    draft = await load_draft(ctx, number)
    involved = draft.submitter_userid == ctx.user or is_admin(ctx)
    if not involved and draft.status == "in_review":
        chain = ctx.settings.chain_for(draft.category)
        people = await stage_people(ctx, chain, draft, await current_decisions(ctx, draft))
        involved = ctx.user in people.assignees
    if not involved:
        raise UserFacingError(f"只有投稿人、当前审核人或管理员可以抄送{views.draft_label(draft)}。")
    now = ctx.now()
    assert draft.id is not None
    added = [
        u for u in targets
        if await drafts_repo.add_watcher(session=ctx.session, draft_id=draft.id, userid=u, by=ctx.user, at=now)
    ]
    if not added:
        raise UserFacingError("这些人已在抄送名单中。")
    await append_audit(
        session=ctx.session, at=now, actor=ctx.user, action="cc", draft_id=draft.id,
        details={"to": added},
    )
    ctx.outbox.send_text(added, views.copied_notice(draft, ctx.name_of(ctx.user)))
    names = {m.userid: m.name for m in ctx.settings.staff}
    ctx.reply_text(f"已抄送{views.draft_label(draft)}给{views.names(added, names)}。")


# ---------------------------------------------------------------- 催办


@router.command("remind", aliases=("催办",), usage=REMIND_USAGE, summary="投稿人提醒当前环节的审核人")
async def on_remind(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) != 1:
        raise UserFacingError(views.usage(REMIND_USAGE))
    draft = await in_review(ctx, parse_number(cmd.argv[0], REMIND_USAGE))
    if draft.submitter_userid != ctx.user and not is_admin(ctx):
        raise UserFacingError(f"只有投稿人或管理员可以催办{views.draft_label(draft)}。")
    now = ctx.now()
    interval = timedelta(minutes=ctx.settings.review.remind_interval_minutes)
    last = (
        await ctx.session.exec(
            select(AuditEntry.at)
            .where(AuditEntry.draft_id == draft.id, AuditEntry.action == "remind")
            .order_by(col(AuditEntry.id).desc())
            .limit(1)
        )
    ).first()
    if last is not None and now - last < interval:
        wait = int((last + interval - now).total_seconds() // 60) + 1
        raise UserFacingError(f"刚刚已催办过，请 {wait} 分钟后再试。")
    chain = ctx.settings.chain_for(draft.category)
    stage_name = stage_of(chain, draft.stage).name
    people = await stage_people(ctx, chain, draft, await current_decisions(ctx, draft))
    waited = views.local(draft.stage_entered_at, ctx.settings.tz)
    ctx.outbox.send_text(
        list(people.assignees),
        f"【催办】{ctx.name_of(ctx.user)}提醒：{views.draft_label(draft)}自 {waited} 起等待您{stage_name}，"
        f"请在审核卡片上处理，或发送 /approve {draft.id}、/reject {draft.id} 理由。",
    )
    await append_audit(
        session=ctx.session, at=now, actor=ctx.user, action="remind", draft_id=draft.id,
        details={"stage": draft.stage, "to": list(people.assignees)},
    )
    names = {m.userid: m.name for m in ctx.settings.staff}
    ctx.reply_text(f"已提醒{views.names(people.assignees, names)}处理{views.draft_label(draft)}的{stage_name}。")


# ---------------------------------------------------------------- 代理


AWAY_RE = re.compile(r"^(?:至|到)?\s*(\d{4}-\d{1,2}-\d{1,2})\s*(?:代理|由)?\s*(\S+)$")


@router.command(
    "away", aliases=("代理", "外出"), usage=AWAY_USAGE, summary="外出期间把审核工作交给代理人",
    roles=("reviewer", "leader", "collector", "publisher"),
)
async def on_away(ctx: Context, cmd: Command) -> None:
    args = cmd.args.strip()
    now = ctx.now()
    current = await ctx.session.get(Delegation, ctx.user)
    if args in ("取消", "cancel", "结束"):
        if current is None or current.until <= now:
            raise UserFacingError("您当前没有设置代理。")
        await ctx.session.delete(current)
        await append_audit(session=ctx.session, at=now, actor=ctx.user, action="away_end", details={})
        ctx.outbox.send_text([current.delegate], f"{ctx.name_of(ctx.user)}已结束外出，不再需要您代理审核。")
        ctx.reply_text("已取消代理，新的审核工作将直接发给您。")
        return
    if not args:
        if current is not None and current.until > now:
            until = current.until.astimezone(ctx.settings.tz) - timedelta(days=1)
            ctx.reply_text(f"您外出至 {until:%Y-%m-%d}，由{ctx.name_of(current.delegate)}代理。取消：/away 取消")
            return
        raise UserFacingError(views.usage(AWAY_USAGE))
    match = AWAY_RE.match(args)
    if match is None:
        raise UserFacingError(views.usage(AWAY_USAGE))
    try:
        last_day = date.fromisoformat("-".join(f"{int(p):02d}" for p in match.group(1).split("-")))
    except ValueError:
        raise UserFacingError(views.usage(AWAY_USAGE)) from None
    delegate = require_staff_userid(ctx, match.group(2))
    if delegate == ctx.user:
        raise UserFacingError("代理人不能是您自己。")
    today = now.astimezone(ctx.settings.tz).date()
    if last_day < today or last_day > today + timedelta(days=MAX_AWAY_DAYS):
        raise UserFacingError(f"结束日期须在今天到 {MAX_AWAY_DAYS} 天以内。")
    until = datetime.combine(last_day + timedelta(days=1), time(0), ctx.settings.tz)
    if current is None:
        ctx.session.add(Delegation(userid=ctx.user, delegate=delegate, until=until, created_at=now))
    else:
        current.delegate, current.until, current.created_at = delegate, until, now
        ctx.session.add(current)
    await ctx.session.flush()
    await append_audit(
        session=ctx.session, at=now, actor=ctx.user, action="away", details={"delegate": delegate, "until": until.isoformat()},
    )
    handed = await hand_over_pending(ctx, delegate)
    ctx.outbox.send_text(
        [delegate],
        f"{ctx.name_of(ctx.user)}外出至 {last_day:%Y-%m-%d}，期间其审核工作由您代理"
        f"（记录中会同时写明您和{ctx.name_of(ctx.user)}）。" + (f"已转来 {handed} 件待审稿件。" if handed else ""),
    )
    ctx.reply_text(
        f"已设置：外出至 {last_day:%Y-%m-%d}，由{ctx.name_of(delegate)}代理审核。"
        + (f"您手上 {handed} 件待审稿件已转给代理人。" if handed else "")
        + "提前回来请发送 /away 取消。"
    )


async def hand_over_pending(ctx: Context, delegate: str) -> int:
    """Send the delegate a card for every stage now waiting on the caller."""
    rows = await ctx.session.exec(select(Draft).where(Draft.status == "in_review").order_by(col(Draft.id)))
    handed = 0
    for draft in rows.all():
        chain = ctx.settings.chain_for(draft.category)
        decisions = await current_decisions(ctx, draft)
        people = await stage_people(ctx, chain, draft, decisions)
        if people.on_behalf.get(delegate) == ctx.user:
            await start_stage(ctx, draft, decisions, only=(delegate,))
            handed += 1
    return handed
