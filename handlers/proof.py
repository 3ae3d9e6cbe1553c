"""三校 chat handlers: 校对无误 / 有修改 on the proof card, the correction note, and /proof — parse, call the service, reply."""

from __future__ import annotations

from bot import views
from bot.core.errors import UserFacingError
from bot.services import proof, review
from bot.wecom.context import Context, SkipHandler
from bot.wecom.dispatcher import Command, Router
from bot.wecom.events import CardClick, TextMessage
from handlers.args import card_number, parse_number, tell
from storage import drafts_repo

router = Router("proof")

PROOF_USAGE = "/proof 编号 无误 或 /proof 编号 有修改 改正说明"
RESULT_WORDS = {
    "无误": "passed",
    "通过": "passed",
    "校对无误": "passed",
    "有修改": "changed",
    "修改": "changed",
}


@router.card("pf")
async def on_proof_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    number = card_number(parts[1]) if len(parts) == 2 else None
    if number is None or parts[0] not in proof.RESULTS:
        raise UserFacingError(views.UNKNOWN_CARD)
    card = await drafts_repo.get_card(session=ctx.session, card_id=number)
    if card is None or card.task_id != click.task_id:
        ctx.log.warning("proof click on unknown card %s task %s by %s", parts[1], click.task_id, ctx.user)
        raise UserFacingError(views.UNKNOWN_CARD)
    draft = await review.load_draft(ctx, card.draft_id)
    if parts[0] == "passed":
        await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
        tell(
            ctx,
            await proof.sign_proof(
                ctx, draft, result="passed", note="", card=card, response_code=click.response_code, via="card"
            ),
        )
        return
    # 有修改: check now (a wrong person hears why at once), record when the note arrives.
    _, step, _ = await proof.open_proof_for(ctx, draft, card=card)
    await drafts_repo.set_conversation(
        session=ctx.session,
        userid=ctx.user,
        kind="proof_note",
        data={"draft_id": draft.id, "card_id": card.id, "response_code": click.response_code},
        at=ctx.now(),
    )
    ctx.reply_text(views.ask_proof_note(draft, step.name))


@router.command("proof", aliases=("校对",), usage=PROOF_USAGE, summary="签署当前校次（卡片过期时用）")
async def on_proof_command(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 2 or cmd.argv[1] not in RESULT_WORDS:
        raise UserFacingError(views.usage(PROOF_USAGE))
    number = parse_number(cmd.argv[0], PROOF_USAGE)
    result = RESULT_WORDS[cmd.argv[1]]
    parts = cmd.args.split(None, 2)
    note = " ".join([parts[2] if len(parts) > 2 else "", cmd.body]).strip()
    draft = await review.load_draft(ctx, number)
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    tell(
        ctx,
        await proof.sign_proof(
            ctx, draft, result=result, note=note, card=None, response_code=None, via="command"
        ),
    )


@router.text()
async def on_proof_note(ctx: Context, message: TextMessage) -> None:
    conversation = await drafts_repo.get_conversation(session=ctx.session, userid=ctx.user)
    if conversation is None or conversation.kind != "proof_note":
        raise SkipHandler
    data = conversation.data
    draft = await review.load_draft(ctx, int(data["draft_id"]))
    card = await drafts_repo.get_card(session=ctx.session, card_id=int(data["card_id"]))
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    try:
        done = await proof.sign_proof(
            ctx,
            draft,
            result="changed",
            note=message.content,
            card=card,
            response_code=data.get("response_code") or None,
            via="card",
        )
    except UserFacingError as exc:  # the draft moved on meanwhile: stop waiting, say why
        ctx.reply_text(exc.message)
        return
    tell(ctx, done)
