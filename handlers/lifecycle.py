"""The review lifecycle commands: 撤回, 转审, 加签, 退回, 抄送, 催办 and 代理 — parse, call the service, reply."""

from __future__ import annotations

import re
from datetime import date

from bot import views
from bot.core.errors import UserFacingError
from bot.rules.calendar import last_day_of
from bot.services import lifecycle
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from handlers.args import number_in, parse_number, tell

router = Router("lifecycle")

WITHDRAW_USAGE = "/withdraw 编号 [理由]"
TRANSFER_USAGE = "/transfer 编号 userid 理由"
COSIGN_USAGE = "/cosign 编号 userid [userid…] 理由"
USERID_RE = re.compile(r"^[A-Za-z0-9_.@-]+$")
RETURN_USAGE = "/return 编号 阶段 理由（阶段如 一审、二审）"
CC_USAGE = "/cc 编号 userid [userid…]"
REMIND_USAGE = "/remind 编号"
AWAY_USAGE = "/away 至 YYYY-MM-DD 代理 userid（取消：/away 取消）"
STAGE_WORDS = {"一审": 1, "二审": 2, "三审": 3, "四审": 4, "五审": 5}


def parse_stage(word: str) -> int:
    """A stage named '二审' or '2'; whether the draft's chain has it is the service's to say."""
    number = STAGE_WORDS.get(word) or number_in(word, 1, len(STAGE_WORDS))
    if number is None:
        raise UserFacingError(views.usage(RETURN_USAGE))
    return number


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
    number = parse_number(cmd.argv[0], WITHDRAW_USAGE)
    tell(ctx, await lifecycle.withdraw(ctx, number, reason_after(cmd, 1)))


# ---------------------------------------------------------------- 转审


@router.command(
    "transfer", aliases=("转审",), usage=TRANSFER_USAGE, summary="把当前环节转给他人审核（须写理由）"
)
async def on_transfer(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 2:
        raise UserFacingError(views.usage(TRANSFER_USAGE))
    number = parse_number(cmd.argv[0], TRANSFER_USAGE)
    reason = reason_after(cmd, 2)
    if not reason:
        raise UserFacingError("转审须写明理由。用法：" + TRANSFER_USAGE)
    tell(ctx, await lifecycle.transfer(ctx, number, cmd.argv[1], reason))


# ---------------------------------------------------------------- 加签 (联审)


@router.command(
    "cosign", aliases=("加签", "联审"), usage=COSIGN_USAGE, summary="为当前环节加签联审人（会签，须写理由）"
)
async def on_cosign(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 2:
        raise UserFacingError(views.usage(COSIGN_USAGE))
    number = parse_number(cmd.argv[0], COSIGN_USAGE)
    userids = []
    for word in cmd.argv[1:]:
        if not USERID_RE.match(word):
            break
        userids.append(word)
    if not userids:
        raise UserFacingError(views.usage(COSIGN_USAGE))
    reason = reason_after(cmd, 1 + len(userids))
    if not reason:
        raise UserFacingError("加签须写明理由。用法：" + COSIGN_USAGE)
    tell(ctx, await lifecycle.cosign(ctx, number, list(dict.fromkeys(userids)), reason))


# ---------------------------------------------------------------- 退回


@router.command("return", aliases=("退回",), usage=RETURN_USAGE, summary="把稿件退回到之前的环节重新审核")
async def on_return(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 2:
        raise UserFacingError(views.usage(RETURN_USAGE))
    number = parse_number(cmd.argv[0], RETURN_USAGE)
    reason = reason_after(cmd, 2)
    if not reason:
        raise UserFacingError("退回须写明理由。用法：" + RETURN_USAGE)
    tell(ctx, await lifecycle.return_to_stage(ctx, number, parse_stage(cmd.argv[1]), reason))


# ---------------------------------------------------------------- 抄送


@router.command("cc", aliases=("抄送",), usage=CC_USAGE, summary="抄送稿件给他人（通过三审时也会通知）")
async def on_cc(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 2:
        raise UserFacingError(views.usage(CC_USAGE))
    number = parse_number(cmd.argv[0], CC_USAGE)
    tell(ctx, await lifecycle.copy_to(ctx, number, cmd.argv[1:]))


# ---------------------------------------------------------------- 催办


@router.command("remind", aliases=("催办",), usage=REMIND_USAGE, summary="投稿人提醒当前环节的审核人")
async def on_remind(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) != 1:
        raise UserFacingError(views.usage(REMIND_USAGE))
    tell(ctx, await lifecycle.remind(ctx, parse_number(cmd.argv[0], REMIND_USAGE)))


# ---------------------------------------------------------------- 代理


AWAY_RE = re.compile(r"^(?:至|到)?\s*(\d{4}-\d{1,2}-\d{1,2})\s*(?:代理|由)?\s*(\S+)$")


@router.command(
    "away",
    aliases=("代理", "外出"),
    usage=AWAY_USAGE,
    summary="外出期间把审核工作交给代理人",
    roles=("reviewer", "leader", "collector", "publisher"),
)
async def on_away(ctx: Context, cmd: Command) -> None:
    args = cmd.args.strip()
    if args in ("取消", "cancel", "结束"):
        ctx.reply_text((await lifecycle.cancel_away(ctx)).message)
        return
    if not args:
        current = await lifecycle.current_delegation(ctx)
        if current is None:
            raise UserFacingError(views.usage(AWAY_USAGE))
        until = last_day_of(current.until, ctx.settings.tz)
        ctx.reply_text(f"您外出至 {until:%Y-%m-%d}，由{ctx.name_of(current.delegate)}代理。取消：/away 取消")
        return
    match = AWAY_RE.match(args)
    if match is None:
        raise UserFacingError(views.usage(AWAY_USAGE))
    try:
        last_day = date.fromisoformat("-".join(f"{int(p):02d}" for p in match.group(1).split("-")))
    except ValueError:
        raise UserFacingError(views.usage(AWAY_USAGE)) from None
    ctx.reply_text((await lifecycle.set_away(ctx, match.group(2), last_day)).message)
