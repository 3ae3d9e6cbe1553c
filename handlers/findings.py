"""智能识错 in chat: /check 编号 lists the current version's findings."""

from __future__ import annotations

from bot import views
from bot.core.errors import UserFacingError
from bot.services.review import load_draft, may_view
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from handlers.args import parse_number
from storage import drafts_repo

router = Router("findings")

CHECK_USAGE = "/check 编号"


@router.command("check", aliases=("识错",), usage=CHECK_USAGE, summary="智能识错：列出稿件当前版本的疑似问题")
async def on_check(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) != 1:
        raise UserFacingError(views.usage(CHECK_USAGE))
    number = parse_number(cmd.argv[0], CHECK_USAGE)
    draft = await load_draft(ctx, number, lock=False)
    if not await may_view(ctx, draft):
        raise UserFacingError(f"您无权查看{views.draft_label(draft)}的识错结果（仅投稿人、审核人、抄送人和负责人可查看）。")
    assert draft.id is not None
    records = await drafts_repo.version_findings(session=ctx.session, draft_id=draft.id, version=draft.version)
    ctx.reply_text(views.findings_list(draft, records))
