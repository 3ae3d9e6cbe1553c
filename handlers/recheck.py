"""发布后复核 in chat: the re-check card's 确认无误 / 发现问题, and /recheck (复核) to list one's
open re-checks or record an outcome with what was wrong."""

from __future__ import annotations

from bot import views
from bot.core.errors import UserFacingError
from bot.rules.calendar import fmt_local
from bot.services import recheck
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from bot.wecom.events import CardClick
from handlers.args import card_number, parse_number
from storage.models import Draft

router = Router("recheck")

RECHECK_USAGE = "/recheck；/recheck 编号 无误；/recheck 编号 问题 说明"
OUTCOME_WORDS = {"无误": "ok", "ok": "ok", "问题": "problem", "problem": "problem"}


@router.command(
    "recheck", aliases=("复核",), usage=RECHECK_USAGE, summary="发布后复核；待复核列表，或登记复核结果"
)
async def on_recheck(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        open_ones = await recheck.my_rechecks(ctx)
        if not open_ones:
            ctx.reply_text("没有待完成的发布后复核。")
            return
        lines = [f"【发布后复核】待完成 {len(open_ones)} 项："]
        for item in open_ones:
            draft = await ctx.session.get(Draft, item.draft_id)
            title = f"《{draft.title}》" if draft is not None else ""
            late = "（已超时）" if item.due_at < ctx.now() else ""
            lines.append(
                f"{item.id}. 稿件{item.draft_id}号{title} · {item.account} · "
                f"{fmt_local(item.due_at, ctx.settings.tz)} 前{late}"
            )
        lines.append("登记结果：/recheck 编号 无误，或 /recheck 编号 问题 说明")
        ctx.reply_text("\n".join(lines))
        return
    if len(cmd.argv) < 2 or cmd.argv[1] not in OUTCOME_WORDS:
        raise UserFacingError(views.usage(RECHECK_USAGE))
    number = parse_number(cmd.argv[0], RECHECK_USAGE)
    outcome = OUTCOME_WORDS[cmd.argv[1]]
    note = " ".join(p for p in (" ".join(cmd.argv[2:]), cmd.body.strip()) if p)
    if outcome == "ok" and note:
        raise UserFacingError(f"“无误”后面不需要说明；发现问题请用 /recheck {number} 问题 说明。")
    ctx.reply_text((await recheck.decide_recheck(ctx, number, outcome, note)).message)


@router.card("rc")
async def on_recheck_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    number = card_number(parts[1]) if len(parts) == 2 else None
    if number is None or parts[0] not in ("ok", "problem"):
        raise UserFacingError(views.UNKNOWN_CARD)
    if parts[0] == "problem":
        # a card cannot take text: the card stays open until the problem is written down
        ctx.reply_text(
            f"请写明发现的问题：/recheck {number} 问题 说明（如：第二段数据有误）。写明后即记录并告知投稿人、发布人和管理员。"
        )
        return
    done = await recheck.decide_recheck(
        ctx, number, "ok", task_id=click.task_id, response_code=click.response_code
    )
    ctx.reply_text(done.message)
