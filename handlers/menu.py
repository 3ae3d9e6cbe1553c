"""Opening the app (enter_agent): the day's first visit is greeted with what waits on the person."""

from __future__ import annotations

from bot.services.menu import welcome
from bot.wecom.context import Context
from bot.wecom.dispatcher import Router
from bot.wecom.events import EnterAgent

router = Router("menu")


@router.enter_agent()
async def on_enter_agent(ctx: Context, event: EnterAgent) -> None:
    text = await welcome(ctx)
    if text is None:
        ctx.log.debug("%s opened the app again today: no greeting", event.user)
        return
    ctx.reply_text(text)
