"""三审 chat handlers: /submit, card taps and /approve /reject, reject reasons, /revise — parse, call the service, reply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot import views
from bot.core.errors import UserFacingError
from bot.rules.review import stage_of
from bot.rules.submission import (
    DraftMeta,
    MetaAnswers,
    SubmissionError,
    parse_answer,
    parse_submission,
)
from bot.services import review
from bot.services.review import MAX_BODY_CHARS
from bot.wecom.context import Context, SkipHandler
from bot.wecom.dispatcher import Command, Router, unpack_action
from bot.wecom.events import CardClick, IncomingEvent, TextMessage
from handlers.args import card_number, parse_number, tell
from storage import drafts_repo
from storage.models import ApprovalCard, Draft

router = Router("review")

SUBMIT_USAGE = "/submit 标题（下一行起写 来源：/公开：/平台：，缺的会逐项询问；然后是正文）"
APPROVE_USAGE = "/approve 编号 [意见]"
REJECT_USAGE = "/reject 编号 理由"
SECRET_USAGE = "/secret 编号 理由"
REVISE_USAGE = "/revise 编号（下一行起写新正文）"


# ---------------------------------------------------------------- submit


@router.command(
    "submit",
    aliases=("投稿",),
    usage=SUBMIT_USAGE,
    summary="投稿送审（正文可分多条，/done 结束）",
    roles=("collector",),
)
async def on_submit_command(ctx: Context, cmd: Command) -> None:
    title = cmd.args.strip()
    if not title:
        raise UserFacingError(views.usage(SUBMIT_USAGE))
    try:
        answers, body = parse_submission(cmd.body)
    except SubmissionError as exc:
        raise UserFacingError(str(exc)) from None
    missing = answers.missing()
    if missing:
        await ask_for_meta(ctx, title, answers, body)
        ctx.reply_text(views.meta_missing(title, missing))
        return
    await submit_or_collect(ctx, title, answers.complete(), body)


async def ask_for_meta(ctx: Context, title: str, answers: MetaAnswers, body: str) -> None:
    """Wait for the answer to the next question (保密审查表 注3: the submitter ticks, nothing is assumed)."""
    await drafts_repo.set_conversation(
        session=ctx.session,
        userid=ctx.user,
        kind="submit_meta",
        data={"title": title, "answers": answers.to_data(), "body": body},
        at=ctx.now(),
    )


async def submit_or_collect(ctx: Context, title: str, meta: DraftMeta, body: str) -> None:
    """Create the draft now, or without a body yet, collect it from the following messages."""
    if body:
        tell(ctx, await review.create_draft(ctx, title, meta, review.text_content(body)))
        await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
        return
    await drafts_repo.set_conversation(
        session=ctx.session,
        userid=ctx.user,
        kind="collect_body",
        data={"title": title, "meta": meta.__dict__ | {"platforms": list(meta.platforms)}, "parts": []},
        at=ctx.now(),
    )
    ctx.reply_text(views.collecting_started(title))


@router.command("done", aliases=("完成",), usage="/done", summary="结束分段发送的正文并提交")
async def on_done_command(ctx: Context, cmd: Command) -> None:
    conversation = await drafts_repo.get_conversation(session=ctx.session, userid=ctx.user)
    if conversation is not None and conversation.kind == "submit_meta":
        field = MetaAnswers.from_data(conversation.data["answers"]).missing()[0]
        raise UserFacingError(views.META_QUESTIONS[field])
    if conversation is None or conversation.kind != "collect_body":
        raise UserFacingError("当前没有正在发送的正文。投稿请发送：" + SUBMIT_USAGE)
    data = conversation.data
    body = "\n".join(data.get("parts", [])).strip()
    if not body:
        raise UserFacingError("正文还是空的，请先发送正文，再发送 /done。")
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    if "revise" in data:
        tell(ctx, await review.revise_draft(ctx, int(data["revise"]), review.text_content(body)))
        return
    meta_data = dict(data["meta"])
    meta_data["platforms"] = tuple(meta_data["platforms"])
    tell(
        ctx,
        await review.create_draft(ctx, str(data["title"]), DraftMeta(**meta_data), review.text_content(body)),
    )


@router.command("cancel", aliases=("取消",), usage="/cancel", summary="放弃正在进行的投稿或操作")
async def on_cancel_command(ctx: Context, cmd: Command) -> None:
    conversation = await drafts_repo.get_conversation(session=ctx.session, userid=ctx.user)
    if conversation is None:
        raise UserFacingError("当前没有进行中的操作。")
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    ctx.reply_text("已取消。")


# ---------------------------------------------------------------- decisions


REVIEW_CARD = "rv"
REVIEW_ACTIONS = ("approve", "reject", "classified")


def tapped_card(parts: list[str]) -> int | None:
    """The card a review card button's key parts name, or None for a key no card of ours has."""
    number = card_number(parts[1]) if len(parts) == 2 else None
    return number if number is not None and parts[0] in REVIEW_ACTIONS else None


@router.reads_ahead()
async def read_tapped_cards(session: Any, events: list[IncomingEvent], now: datetime) -> None:
    """The cards a group's review taps name, and their drafts, in one read (drafts_repo.read_cards_ahead)."""
    numbers = []
    for event in events:
        if isinstance(event, CardClick):
            prefix, parts = unpack_action(event.event_key)
            number = tapped_card(parts) if prefix == REVIEW_CARD else None
            if number is not None:
                numbers.append(number)
    await drafts_repo.read_cards_ahead(session=session, card_ids=numbers, at=now)


@router.card(REVIEW_CARD)
async def on_review_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    number = tapped_card(parts)
    if number is None:
        raise UserFacingError(views.UNKNOWN_CARD)
    action = parts[0]
    found = await drafts_repo.card_with_draft(session=ctx.session, card_id=number)
    if found is None or found[0].task_id != click.task_id:
        ctx.log.warning("click on unknown card %s task %s by %s", number, click.task_id, ctx.user)
        raise UserFacingError(views.UNKNOWN_CARD)
    card, draft = found
    if action == "approve":
        await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
        tell(
            ctx,
            await review.decide(
                ctx,
                draft,
                decision="approve",
                opinion="",
                card=card,
                response_code=click.response_code,
                via="card",
            ),
        )
        return
    # 不同意: check now (a wrong person hears why at once), record when the reason arrives.
    chain = ctx.settings.chain_for(draft.category, draft.important)
    refusal = await review.refusal_for(ctx, chain, draft, card, await review.current_decisions(ctx, draft))
    if refusal is not None:
        raise UserFacingError(refusal)
    stage_name = stage_of(chain, draft.stage).name
    classified = action == "classified"
    if classified and draft.stage != chain.secrecy_stage:
        raise UserFacingError(views.not_secrecy_stage(draft, stage_of(chain, chain.secrecy_stage).name))
    await drafts_repo.set_conversation(
        session=ctx.session,
        userid=ctx.user,
        kind="reject_reason",
        data={
            "draft_id": draft.id,
            "card_id": card.id,
            "response_code": click.response_code,
            "decision": "classified" if classified else "reject",
        },
        at=ctx.now(),
    )
    ctx.reply_text(
        views.ask_classified_reason(draft, stage_name)
        if classified
        else views.ask_reject_reason(draft, stage_name)
    )


@router.command("approve", aliases=("同意",), usage=APPROVE_USAGE, summary="同意当前环节（卡片过期时用）")
async def on_approve_command(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        raise UserFacingError(views.usage(APPROVE_USAGE))
    number = parse_number(cmd.argv[0], APPROVE_USAGE)
    opinion = " ".join([cmd.args.split(None, 1)[1] if len(cmd.argv) > 1 else "", cmd.body]).strip()
    draft = await review.load_draft(ctx, number)
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    tell(
        ctx,
        await review.decide(
            ctx, draft, decision="approve", opinion=opinion, card=None, response_code=None, via="command"
        ),
    )


@router.command("reject", aliases=("不同意",), usage=REJECT_USAGE, summary="不同意并退回投稿人（须写理由）")
async def on_reject_command(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        raise UserFacingError(views.usage(REJECT_USAGE))
    number = parse_number(cmd.argv[0], REJECT_USAGE)
    reason = " ".join([cmd.args.split(None, 1)[1] if len(cmd.argv) > 1 else "", cmd.body]).strip()
    if not reason:
        raise UserFacingError("不同意须写明理由。用法：" + REJECT_USAGE)
    draft = await review.load_draft(ctx, number)
    await reject_with_reason(ctx, draft, reason, card=None, response_code=None, via="command")


async def reject_with_reason(
    ctx: Context,
    draft: Draft,
    reason: str,
    *,
    card: ApprovalCard | None,
    response_code: str | None,
    via: str,
    decision: str = "reject",
) -> None:
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    tell(
        ctx,
        await review.decide(
            ctx, draft, decision=decision, opinion=reason, card=card, response_code=response_code, via=via
        ),
    )


@router.command(
    "secret",
    aliases=("涉密",),
    usage=SECRET_USAGE,
    summary="保密审查认定涉密、不得公开（终止稿件，须写理由）",
)
async def on_secret_command(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        raise UserFacingError(views.usage(SECRET_USAGE))
    number = parse_number(cmd.argv[0], SECRET_USAGE)
    reason = " ".join([cmd.args.split(None, 1)[1] if len(cmd.argv) > 1 else "", cmd.body]).strip()
    if not reason:
        raise UserFacingError("认定涉密须写明理由。用法：" + SECRET_USAGE)
    draft = await review.load_draft(ctx, number)
    await reject_with_reason(
        ctx, draft, reason, card=None, response_code=None, via="command", decision="classified"
    )


# ---------------------------------------------------------------- revise


@router.command("revise", aliases=("修改",), usage=REVISE_USAGE, summary="修改被退回的稿件，从一审重新送审")
async def on_revise_command(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) != 1:
        raise UserFacingError(views.usage(REVISE_USAGE))
    number = parse_number(cmd.argv[0], REVISE_USAGE)
    body = cmd.body.strip()
    if body:
        tell(ctx, await review.revise_draft(ctx, number, review.text_content(body)))
        return
    draft = await review.load_draft(ctx, number, lock=False)
    if draft.submitter_userid != ctx.user:
        raise UserFacingError(f"只有投稿人可以修改{views.draft_label(draft)}。")
    await drafts_repo.set_conversation(
        session=ctx.session,
        userid=ctx.user,
        kind="collect_body",
        data={"revise": number, "parts": []},
        at=ctx.now(),
    )
    ctx.reply_text(f"请发送{views.draft_label(draft)}的新正文（可分多条），发完后发送 /done。")


# ---------------------------------------------------------------- free text


@router.text()
async def on_conversation_text(ctx: Context, message: TextMessage) -> None:
    conversation = await drafts_repo.get_conversation(session=ctx.session, userid=ctx.user)
    if conversation is None:
        raise SkipHandler
    data = conversation.data
    if conversation.kind == "reject_reason":
        reason = message.content.strip()
        draft = await review.load_draft(ctx, int(data["draft_id"]))
        card = await drafts_repo.get_card(session=ctx.session, card_id=int(data["card_id"]))
        chain = ctx.settings.chain_for(draft.category, draft.important)
        refusal = await review.refusal_for(
            ctx, chain, draft, card, await review.current_decisions(ctx, draft)
        )
        if refusal is not None:  # the draft moved on meanwhile: stop waiting for a reason
            await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
            ctx.reply_text(refusal)
            return
        await reject_with_reason(
            ctx,
            draft,
            reason,
            card=card,
            response_code=data.get("response_code") or None,
            via="card",
            decision=str(data.get("decision") or "reject"),
        )
        return
    if conversation.kind == "submit_meta":
        await on_meta_answer(ctx, data, message.content)
        return
    if conversation.kind == "collect_body":
        parts = [*data.get("parts", []), message.content]
        size = sum(len(p) for p in parts)
        if size > MAX_BODY_CHARS:
            raise UserFacingError(f"正文过长（超过{MAX_BODY_CHARS}字），本段未收入。")
        await drafts_repo.set_conversation(
            session=ctx.session,
            userid=ctx.user,
            kind="collect_body",
            data={**data, "parts": parts},
            at=ctx.now(),
        )
        ctx.reply_text(views.collecting_appended(len(parts), size))
        return
    raise SkipHandler


async def on_meta_answer(ctx: Context, data: dict[str, Any], text: str) -> None:
    """One answer to a follow-up question of /submit; the draft is created once nothing is missing."""
    answers = MetaAnswers.from_data(data["answers"])
    field = answers.missing()[0]
    try:
        answers = parse_answer(field, text, answers)
    except SubmissionError as exc:
        ctx.reply_text(views.meta_answer_refused(str(exc), field))
        return
    title, body = str(data["title"]), str(data.get("body") or "")
    missing = answers.missing()
    if missing:
        await ask_for_meta(ctx, title, answers, body)
        ctx.reply_text(views.meta_next(missing))
        return
    await submit_or_collect(ctx, title, answers.complete(), body)
