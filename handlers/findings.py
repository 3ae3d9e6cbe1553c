"""智能识错 in chat: /check 编号 lists the current version's findings; /check 编号 误报 2 marks them."""

from __future__ import annotations

from bot import views
from bot.core.errors import UserFacingError
from bot.rules.finding_marks import MARK_WORDS
from bot.services import findings
from bot.services.review import load_draft, may_view
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from handlers.args import parse_int, parse_number
from storage import drafts_repo, findings_repo

router = Router("findings")

CHECK_USAGE = "/check 编号 [已核实|已修改|误报 序号…]"
MAX_NUMBERS = 50  # findings marked by one command


@router.command(
    "check", aliases=("识错",), usage=CHECK_USAGE, summary="智能识错：查看稿件的疑似问题，逐项标记"
)
async def on_check(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) == 2 or not cmd.argv or len(cmd.argv) > 2 + MAX_NUMBERS:
        raise UserFacingError(views.usage(CHECK_USAGE))
    number = parse_number(cmd.argv[0], CHECK_USAGE)
    mark = MARK_WORDS.get(cmd.argv[1]) if len(cmd.argv) > 2 else None
    if len(cmd.argv) > 2 and mark is None:
        raise UserFacingError(views.usage(CHECK_USAGE))
    numbers = [parse_int(word.strip("，,、"), CHECK_USAGE) for word in cmd.argv[2:]]
    draft = await load_draft(ctx, number, lock=mark is not None)
    if not await may_view(ctx, draft):
        raise UserFacingError(
            f"您无权查看{views.draft_label(draft)}的识错结果（仅投稿人、审核人、抄送人和负责人可查看）。"
        )
    assert draft.id is not None
    if mark is not None:
        ctx.reply_text(await findings.mark(ctx, draft, mark, numbers))
        return
    records = await drafts_repo.version_findings(
        session=ctx.session, draft_id=draft.id, version=draft.version
    )
    marks = await findings_repo.marks_of(
        session=ctx.session, draft_id=draft.id, version=draft.version, userid=ctx.user
    )
    ctx.reply_text(views.findings_list(draft, records, marks))
