"""三审 handlers: submit, approve/reject by card or command, reject reasons, revise."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from bot.config import ChainSettings
from bot.context import Context, SkipHandler, UserFacingError
from bot.dispatcher import Command, Router
from bot.submission import DraftMeta, SubmissionError, parse_submission
from bot.wecom_events import CardClick, TextMessage
from bot.workflow import (
    PastDecision,
    Refusal,
    apply_delegations,
    check_may_decide,
    decided_other_stages,
    decision_slot,
    expand_assignees,
    in_round,
    outcome_after,
    stage_of,
)
from handlers import views
from storage import drafts_repo
from storage.audit_repo import append_audit
from storage.models import ApprovalCard, Draft, StageDecision

router = Router("review")

SUBMIT_USAGE = "/submit 标题（下一行起可写 来源：/公开：/平台： 和正文）"
APPROVE_USAGE = "/approve 编号 [意见]"
REJECT_USAGE = "/reject 编号 理由"
REVISE_USAGE = "/revise 编号（下一行起写新正文）"
MAX_BODY_CHARS = 200_000


# ---------------------------------------------------------------- helpers


def parse_number(text: str, usage: str) -> int:
    token = text.strip().lstrip("#＃")
    if not token.isdigit():
        raise UserFacingError(views.usage(usage))
    return int(token)


async def load_draft(ctx: Context, number: int, *, lock: bool = True) -> Draft:
    draft = await drafts_repo.get_draft(session=ctx.session, draft_id=number, lock=lock)
    if draft is None:
        raise UserFacingError(views.draft_not_found(str(number)))
    return draft


def past_decisions(rows: list[StageDecision]) -> list[PastDecision]:
    return [
        PastDecision(stage=r.stage, reviewer=r.reviewer_userid, decision=r.decision, round=r.round)
        for r in rows
    ]


async def current_decisions(ctx: Context, draft: Draft) -> list[PastDecision]:
    """Every decision of the current version (all rounds)."""
    assert draft.id is not None
    rows = await drafts_repo.list_decisions(
        session=ctx.session, draft_id=draft.id, version=draft.version
    )
    return past_decisions(list(rows))


@dataclass(frozen=True)
class StagePeople:
    """Who may decide the current stage now, and whom each delegate stands in for."""

    assignees: tuple[str, ...]
    on_behalf: dict[str, str]  # delegate → away reviewer


async def stage_people(
    ctx: Context, chain: ChainSettings, draft: Draft, decisions: list[PastDecision]
) -> StagePeople:
    """The chain's assignees, or a 转审's, with people who are away replaced by delegates."""
    assert draft.id is not None
    elsewhere = decided_other_stages(decisions, draft.stage)
    transferred = await drafts_repo.stage_assignment(
        session=ctx.session, draft_id=draft.id, version=draft.version, round_=draft.round,
        stage=draft.stage,
    )
    if transferred is not None:
        base = tuple(u for u in transferred if u not in elsewhere)
    else:
        base = expand_assignees(
            stage_of(chain, draft.stage),
            stage=draft.stage,
            submitter=draft.submitter_userid,
            staff=ctx.staff,
            decided_elsewhere=elsewhere,
        )
    delegates = await drafts_repo.active_delegates(session=ctx.session, userids=base, at=ctx.now())
    effective = apply_delegations(
        base, delegates, submitter=draft.submitter_userid, stage=draft.stage,
        decided_elsewhere=elsewhere,
    )
    on_behalf = {delegates[u]: u for u in base if delegates.get(u) in effective and delegates[u] != u}
    return StagePeople(effective, on_behalf)


async def start_stage(
    ctx: Context,
    draft: Draft,
    decisions: list[PastDecision],
    *,
    only: tuple[str, ...] | None = None,
) -> tuple[str, ...]:
    """Send the current stage's full text and approval card to its assignees (or `only`)."""
    chain = ctx.settings.chain_for(draft.category)
    stage_settings = stage_of(chain, draft.stage)
    assignees = (await stage_people(ctx, chain, draft, decisions)).assignees
    if not assignees:
        raise UserFacingError(views.no_assignees(stage_settings.name))
    if only is not None:
        assignees = tuple(u for u in assignees if u in only)
        if not assignees:
            return assignees
    assert draft.id is not None
    body = await drafts_repo.get_body(session=ctx.session, draft_id=draft.id, version=draft.version)
    ctx.outbox.send_text(assignees, views.full_text(draft, body, stage_settings.name))
    card = await drafts_repo.add_card(
        session=ctx.session, draft=draft, recipients=assignees, at=ctx.now(), nonce=secrets.token_hex(3)
    )
    assert card.id is not None
    payload = views.approval_card(
        draft,
        stage=draft.stage,
        stage_name=stage_settings.name,
        stage_count=len(chain.stages),
        mode=stage_settings.mode,
        task_id=card.task_id,
        card_id=card.id,
        tz=ctx.settings.tz,
    )
    ctx.outbox.send_card(assignees, payload, card_id=card.id)
    return assignees


async def close_open_cards(ctx: Context, draft: Draft, label: str, *, except_card: int | None = None) -> None:
    """Grey every still-open card of the draft for all its holders (send response_code)."""
    assert draft.id is not None
    for card in await drafts_repo.list_open_cards(session=ctx.session, draft_id=draft.id):
        if card.id != except_card and card.response_code:
            ctx.outbox.update_card(card.response_code, replace_name=label, card_id=card.id)
        assert card.id is not None
        await drafts_repo.close_card(session=ctx.session, card_id=card.id)


def staff_names(ctx: Context) -> dict[str, str]:
    return {m.userid: m.name for m in ctx.settings.staff}


def publishers(ctx: Context) -> list[str]:
    return [m.userid for m in ctx.settings.staff if "publisher" in m.roles]


# ---------------------------------------------------------------- submit


async def create_draft(ctx: Context, title: str, meta: DraftMeta, body: str) -> None:
    now = ctx.now()
    draft = Draft(
        title=title[:200],
        category=meta.category,
        source_kind=meta.source_kind,
        source_note=meta.source_note,
        disclosure=meta.disclosure,
        platforms=",".join(meta.platforms),
        submitter_userid=ctx.user,
        submitter_name=ctx.name_of(ctx.user),
        status="in_review",
        version=1,
        stage=1,
        stage_entered_at=now,
        created_at=now,
        updated_at=now,
    )
    await drafts_repo.add_draft(session=ctx.session, draft=draft, body=body)
    assignees = await start_stage(ctx, draft, [])
    await append_audit(
        session=ctx.session,
        at=now,
        actor=ctx.user,
        action="submit",
        draft_id=draft.id,
        details={"title": draft.title, "version": 1, "category": draft.category},
    )
    chain = ctx.settings.chain_for(draft.category)
    ctx.reply_text(
        views.submit_received(draft, chain.stages[0].name, views.names(assignees, staff_names(ctx)))
    )
    copied = [u for u in ctx.settings.review.cc_on_submit if u != ctx.user]
    for userid in copied:
        await drafts_repo.add_watcher(session=ctx.session, draft_id=draft.id, userid=userid, by="config", at=now)
    if copied:
        ctx.outbox.send_text(copied, views.copied_notice(draft, ctx.name_of(ctx.user)))


@router.command(
    "submit", aliases=("投稿",), usage=SUBMIT_USAGE, summary="投稿送审（正文可分多条，/done 结束）",
    roles=("collector",),
)
async def on_submit_command(ctx: Context, cmd: Command) -> None:
    title = cmd.args.strip()
    if not title:
        raise UserFacingError(views.usage(SUBMIT_USAGE))
    try:
        meta, body = parse_submission(cmd.body, ctx.settings.review)
    except SubmissionError as exc:
        raise UserFacingError(str(exc)) from None
    if body:
        await create_draft(ctx, title, meta, body)
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
    if conversation is None or conversation.kind != "collect_body":
        raise UserFacingError("当前没有正在发送的正文。投稿请发送：" + SUBMIT_USAGE)
    data = conversation.data
    body = "\n".join(data.get("parts", [])).strip()
    if not body:
        raise UserFacingError("正文还是空的，请先发送正文，再发送 /done。")
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    if "revise" in data:
        await revise_draft(ctx, int(data["revise"]), body)
        return
    meta_data = dict(data["meta"])
    meta_data["platforms"] = tuple(meta_data["platforms"])
    await create_draft(ctx, str(data["title"]), DraftMeta(**meta_data), body)


@router.command("cancel", aliases=("取消",), usage="/cancel", summary="放弃正在进行的投稿或操作")
async def on_cancel_command(ctx: Context, cmd: Command) -> None:
    conversation = await drafts_repo.get_conversation(session=ctx.session, userid=ctx.user)
    if conversation is None:
        raise UserFacingError("当前没有进行中的操作。")
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    ctx.reply_text("已取消。")


async def refusal_for(
    ctx: Context,
    chain: ChainSettings,
    draft: Draft,
    card: ApprovalCard | None,
    decisions: list[PastDecision],
    people: StagePeople | None = None,
) -> str | None:
    """The Chinese reason the current person may not decide now, or None (and a log line)."""
    acted_stage: int | None = None
    if card is not None:
        current = card.version == draft.version and card.round == draft.round and not card.closed
        acted_stage = card.stage if current else -1
    if people is None and draft.status == "in_review":
        people = await stage_people(ctx, chain, draft, decisions)
    refusal = check_may_decide(
        chain,
        status=draft.status,
        current_stage=draft.stage,
        acted_stage=acted_stage,
        reviewer=ctx.user,
        submitter=draft.submitter_userid,
        staff=ctx.staff,
        decisions=decisions,
        current_round=draft.round,
        assignees=people.assignees if people is not None else None,
    )
    if refusal is None:
        return None
    ctx.log.info("decision by %s on draft %s refused: %s", ctx.user, draft.id, refusal.value)
    return views.refusal_text(refusal, draft, stage_of(chain, draft.stage).name)


# ---------------------------------------------------------------- decisions


async def decide(
    ctx: Context,
    draft: Draft,
    *,
    decision: str,
    opinion: str,
    card: ApprovalCard | None,
    response_code: str | None,
    via: str,
) -> None:
    """Record one decision and everything it implies, or raise UserFacingError (no change)."""
    chain = ctx.settings.chain_for(draft.category)
    stage_settings = stage_of(chain, draft.stage)
    decisions = await current_decisions(ctx, draft)
    people = await stage_people(ctx, chain, draft, decisions)
    refusal = await refusal_for(ctx, chain, draft, card, decisions, people)
    if refusal is not None:
        raise UserFacingError(refusal)
    assignees = people.assignees
    now = ctx.now()
    assert draft.id is not None
    row = StageDecision(
        draft_id=draft.id,
        version=draft.version,
        round=draft.round,
        stage=draft.stage,
        stage_name=stage_settings.name,
        slot=decision_slot(stage_settings, ctx.user),
        reviewer_userid=ctx.user,
        reviewer_name=ctx.name_of(ctx.user),
        decision=decision,
        opinion=opinion,
        decided_at=now,
        via=via,
        on_behalf_of=people.on_behalf.get(ctx.user, ""),
    )
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(row)
            await ctx.session.flush()
    except IntegrityError:
        # Another reviewer's decision for this slot committed first: exactly one counts.
        raise UserFacingError(views.already_decided_by_other(draft, stage_settings.name)) from None
    await append_audit(
        session=ctx.session,
        at=now,
        actor=ctx.user,
        action=decision,
        draft_id=draft.id,
        details={
            "version": draft.version,
            "stage": draft.stage,
            "stage_name": stage_settings.name,
            "opinion": opinion,
            "via": via,
            **({"on_behalf_of": row.on_behalf_of} if row.on_behalf_of else {}),
        },
    )
    stage_rows = [*decisions, PastDecision(draft.stage, ctx.user, decision, draft.round)]
    outcome = outcome_after(
        chain,
        stage=draft.stage,
        decision=decision,
        stage_decisions=in_round(stage_rows, draft.stage, draft.round),
        assignees=assignees,
    )
    label = views.card_done_label(stage_settings.name, decision, ctx.name_of(ctx.user))
    if outcome.kind == "wait":
        if response_code:
            ctx.outbox.update_card(response_code, replace_name=label, userids=[ctx.user])
        approved_by = {d.reviewer for d in in_round(stage_rows, draft.stage, draft.round)}
        missing = [a for a in assignees if a not in approved_by]
        ctx.reply_text(views.waiting_cosign(draft, stage_settings.name, views.names(missing, staff_names(ctx))))
        return
    clicked_card = card.id if card is not None and response_code else None
    if response_code:
        ctx.outbox.update_card(response_code, replace_name=label, card_id=clicked_card)
    await close_open_cards(ctx, draft, label, except_card=clicked_card)
    if clicked_card is not None:
        await drafts_repo.close_card(session=ctx.session, card_id=clicked_card)
    draft.updated_at = now
    reviewer_name = ctx.name_of(ctx.user)
    if outcome.kind == "rejected":
        draft.status = "rejected"
        ctx.session.add(draft)
        ctx.outbox.send_text(
            [draft.submitter_userid],
            views.rejected_notice(draft, stage_settings.name, reviewer_name, opinion),
        )
    elif outcome.kind == "approved":
        draft.status = "approved"
        draft.approved_at = now
        ctx.session.add(draft)
        await append_audit(
            session=ctx.session, at=now, actor="system", action="approved", draft_id=draft.id,
            details={"version": draft.version},
        )
        watchers = await drafts_repo.list_watchers(session=ctx.session, draft_id=draft.id)
        notify = list(
            dict.fromkeys(
                [draft.submitter_userid, *publishers(ctx), *watchers, *ctx.settings.review.cc_on_approval]
            )
        )
        ctx.outbox.send_text(notify, views.approved_notice(draft))
    else:
        assert outcome.next_stage is not None
        draft.stage = outcome.next_stage
        draft.stage_entered_at = now
        ctx.session.add(draft)
        next_assignees = await start_stage(ctx, draft, stage_rows)
        next_name = stage_of(chain, draft.stage).name
        ctx.outbox.send_text(
            [draft.submitter_userid],
            views.stage_passed(
                draft, stage_settings.name, reviewer_name, next_name,
                views.names(next_assignees, staff_names(ctx)),
            ),
        )
    if ctx.user != draft.submitter_userid:
        ctx.reply_text(views.decision_recorded(draft, stage_settings.name, decision))


@router.card("rv")
async def on_review_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    if len(parts) != 2 or parts[0] not in ("approve", "reject") or not parts[1].isdigit():
        raise UserFacingError(views.UNKNOWN_CARD)
    action, card_id = parts[0], int(parts[1])
    card = await drafts_repo.get_card(session=ctx.session, card_id=card_id)
    if card is None or card.task_id != click.task_id:
        ctx.log.warning("click on unknown card %s task %s by %s", card_id, click.task_id, ctx.user)
        raise UserFacingError(views.UNKNOWN_CARD)
    draft = await load_draft(ctx, card.draft_id)
    if action == "approve":
        await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
        await decide(
            ctx, draft, decision="approve", opinion="", card=card,
            response_code=click.response_code, via="card",
        )
        return
    # 不同意: check now (a wrong person hears why at once), record when the reason arrives.
    chain = ctx.settings.chain_for(draft.category)
    refusal = await refusal_for(ctx, chain, draft, card, await current_decisions(ctx, draft))
    if refusal is not None:
        raise UserFacingError(refusal)
    stage_name = stage_of(chain, draft.stage).name
    await drafts_repo.set_conversation(
        session=ctx.session,
        userid=ctx.user,
        kind="reject_reason",
        data={"draft_id": draft.id, "card_id": card.id, "response_code": click.response_code},
        at=ctx.now(),
    )
    ctx.reply_text(views.ask_reject_reason(draft, stage_name))


@router.command("approve", aliases=("同意",), usage=APPROVE_USAGE, summary="同意当前环节（卡片过期时用）")
async def on_approve_command(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        raise UserFacingError(views.usage(APPROVE_USAGE))
    number = parse_number(cmd.argv[0], APPROVE_USAGE)
    opinion = " ".join([cmd.args.split(None, 1)[1] if len(cmd.argv) > 1 else "", cmd.body]).strip()
    draft = await load_draft(ctx, number)
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    await decide(ctx, draft, decision="approve", opinion=opinion, card=None, response_code=None, via="command")


@router.command("reject", aliases=("不同意",), usage=REJECT_USAGE, summary="不同意并退回投稿人（须写理由）")
async def on_reject_command(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        raise UserFacingError(views.usage(REJECT_USAGE))
    number = parse_number(cmd.argv[0], REJECT_USAGE)
    reason = " ".join([cmd.args.split(None, 1)[1] if len(cmd.argv) > 1 else "", cmd.body]).strip()
    if not reason:
        raise UserFacingError("不同意须写明理由。用法：" + REJECT_USAGE)
    draft = await load_draft(ctx, number)
    await reject_with_reason(ctx, draft, reason, card=None, response_code=None, via="command")


async def reject_with_reason(
    ctx: Context, draft: Draft, reason: str, *, card: ApprovalCard | None, response_code: str | None, via: str
) -> None:
    await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
    await decide(ctx, draft, decision="reject", opinion=reason, card=card, response_code=response_code, via=via)


# ---------------------------------------------------------------- revise


async def revise_draft(ctx: Context, number: int, body: str) -> None:
    draft = await load_draft(ctx, number)
    if draft.submitter_userid != ctx.user:
        raise UserFacingError(f"只有投稿人可以修改{views.draft_label(draft)}。")
    if draft.status not in ("rejected", "in_review"):
        raise UserFacingError(
            views.refusal_text(Refusal.NOT_IN_REVIEW, draft, "").replace("不在审核中", "不能再修改")
        )
    if len(body) > MAX_BODY_CHARS:
        raise UserFacingError(f"正文过长（超过{MAX_BODY_CHARS}字）。")
    await close_open_cards(ctx, draft, views.CARD_STALE_LABEL)
    now = ctx.now()
    draft.version += 1
    draft.stage = 1
    draft.status = "in_review"
    draft.stage_entered_at = now
    draft.updated_at = now
    ctx.session.add(draft)
    await drafts_repo.add_version(session=ctx.session, draft=draft, body=body, at=now, by=ctx.user)
    assignees = await start_stage(ctx, draft, [])
    await append_audit(
        session=ctx.session, at=now, actor=ctx.user, action="revise", draft_id=draft.id,
        details={"version": draft.version},
    )
    chain = ctx.settings.chain_for(draft.category)
    ctx.reply_text(views.revised_notice(draft, chain.stages[0].name, views.names(assignees, staff_names(ctx))))


@router.command("revise", aliases=("修改",), usage=REVISE_USAGE, summary="修改被退回的稿件，从一审重新送审")
async def on_revise_command(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) != 1:
        raise UserFacingError(views.usage(REVISE_USAGE))
    number = parse_number(cmd.argv[0], REVISE_USAGE)
    body = cmd.body.strip()
    if body:
        await revise_draft(ctx, number, body)
        return
    draft = await load_draft(ctx, number, lock=False)
    if draft.submitter_userid != ctx.user:
        raise UserFacingError(f"只有投稿人可以修改{views.draft_label(draft)}。")
    await drafts_repo.set_conversation(
        session=ctx.session, userid=ctx.user, kind="collect_body",
        data={"revise": number, "parts": []}, at=ctx.now(),
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
        draft = await load_draft(ctx, int(data["draft_id"]))
        card = await drafts_repo.get_card(session=ctx.session, card_id=int(data["card_id"]))
        chain = ctx.settings.chain_for(draft.category)
        refusal = await refusal_for(ctx, chain, draft, card, await current_decisions(ctx, draft))
        if refusal is not None:  # the draft moved on meanwhile: stop waiting for a reason
            await drafts_repo.clear_conversation(session=ctx.session, userid=ctx.user)
            ctx.reply_text(refusal)
            return
        await reject_with_reason(
            ctx, draft, reason, card=card, response_code=data.get("response_code") or None, via="card"
        )
        return
    if conversation.kind == "collect_body":
        parts = [*data.get("parts", []), message.content]
        size = sum(len(p) for p in parts)
        if size > MAX_BODY_CHARS:
            raise UserFacingError(f"正文过长（超过{MAX_BODY_CHARS}字），本段未收入。")
        await drafts_repo.set_conversation(
            session=ctx.session, userid=ctx.user, kind="collect_body",
            data={**data, "parts": parts}, at=ctx.now(),
        )
        ctx.reply_text(views.collecting_appended(len(parts), size))
        return
    raise SkipHandler
