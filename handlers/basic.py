"""/help and answers to messages the bot does not handle (images, other events)."""

from __future__ import annotations

from bot import views
from bot.core.errors import UserFacingError
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from bot.wecom.events import OtherEvent

router = Router("basic")


@router.command("help", aliases=("帮助",), usage="/help [命令]", summary="查看可用命令")
async def on_help_command(ctx: Context, cmd: Command) -> None:
    roles = ctx.member.roles if ctx.member else ()
    if cmd.argv:
        word = cmd.argv[0].lstrip("/／")
        for spec in ctx.commands:
            if word == spec.name or word in spec.aliases:
                ctx.reply_text(views.command_help(spec))
                return
        raise UserFacingError(f"没有 /{word} 这个命令。发送 /help 查看全部命令。")
    ctx.reply_text(views.help_text(ctx.commands, roles))


@router.other()
async def on_other_event(ctx: Context, event: OtherEvent) -> None:
    ctx.reply_text(views.UNSUPPORTED_MESSAGE)
