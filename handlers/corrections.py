"""纠错, 撤稿 and 错情 in chat: /correct and /retract on a published draft, the takedown card's
已撤下, and /errors (错情) listing each error with who signed the version that carried it."""

from __future__ import annotations

from bot import views
from bot.core.config import ERROR_KIND_LABELS
from bot.core.errors import UserFacingError
from bot.rules.calendar import fmt_local
from bot.services import corrections
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from bot.wecom.events import CardClick
from handlers.args import card_number, parse_number

router = Router("corrections")

KINDS = "|".join(corrections.ERROR_KINDS)
CORRECT_USAGE = f"/correct 编号 {KINDS} 说明"
RETRACT_USAGE = f"/retract 编号 {KINDS} 理由"


def _parsed(cmd: Command, usage: str) -> tuple[int, str, str]:
    if len(cmd.argv) < 2:
        raise UserFacingError(views.usage(usage))
    number = parse_number(cmd.argv[0], usage)
    text = " ".join(p for p in (" ".join(cmd.argv[2:]), cmd.body.strip()) if p)
    return number, cmd.argv[1], text


@router.command(
    "correct",
    aliases=("纠错",),
    usage=CORRECT_USAGE,
    summary="已发布稿件登记错情并退回修改；修改稿重新经过三审",
)
async def on_correct(ctx: Context, cmd: Command) -> None:
    number, kind, text = _parsed(cmd, CORRECT_USAGE)
    ctx.reply_text((await corrections.correct_draft(ctx, number, kind, text)).message)


@router.command(
    "retract",
    aliases=("撤稿",),
    usage=RETRACT_USAGE,
    summary="已发布稿件登记错情并撤稿；通知发布人撤下并确认",
    roles=("publisher", "leader", "principal"),
)
async def on_retract(ctx: Context, cmd: Command) -> None:
    number, kind, text = _parsed(cmd, RETRACT_USAGE)
    ctx.reply_text((await corrections.retract_draft(ctx, number, kind, text)).message)


@router.command(
    "errors",
    aliases=("错情",),
    summary="错情记录与原稿签发人；种类、处理方式（责任倒查）",
    roles=("reviewer", "leader", "principal", "publisher"),
)
async def on_errors(ctx: Context, cmd: Command) -> None:
    cases = await corrections.error_cases(ctx)
    if not cases:
        ctx.reply_text("暂无错情记录。")
        return
    lines = [f"【错情】最近 {len(cases)} 条："]
    for case, draft in cases:
        action = "纠错" if case.action == "correct" else "撤稿"
        lines.append(
            f"{case.id}. {fmt_local(case.recorded_at, ctx.settings.tz, '%Y-%m-%d')} {views.draft_label(draft)}第{case.version}版 · "
            f"{ERROR_KIND_LABELS[case.kind]} · {action}：{case.description}\n"
            f"   签发：{corrections.signers_text(case)}"
        )
    ctx.reply_text("\n".join(lines))


@router.card("rt")
async def on_takedown_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    number = card_number(parts[1]) if len(parts) == 2 else None
    if number is None or parts[0] != "down":
        raise UserFacingError(views.UNKNOWN_CARD)
    ctx.reply_text(await corrections.confirm_takedown(ctx, number, response_code=click.response_code))
