"""The 三校 service: a proofreader signs the open 校 step (card, command or page); once enough have, the draft moves on."""

from __future__ import annotations

from bot import views
from bot.core.config import ChainSettings, ProofSettings
from bot.core.errors import UserFacingError
from bot.rules.audit_chain import record_digest
from bot.rules.proof import check_may_proof, proof_complete, proofreaders
from bot.rules.review import Refusal
from bot.services.review import (
    Done,
    close_open_cards,
    current_decisions,
    move_past_stage,
    proof_signed_by,
    staff_names,
)
from bot.services.scope import Scope
from storage import drafts_repo
from storage.audit_repo import append_audit, proof_fields
from storage.models import ApprovalCard, Draft, ProofRecord

RESULTS = ("passed", "changed")


async def open_proof_for(
    scope: Scope,
    draft: Draft,
    *,
    card: ApprovalCard | None = None,
    seen: tuple[int, int, int] | None = None,
) -> tuple[ChainSettings, ProofSettings, list[ProofRecord]]:
    """The open 校 step `scope.user` may sign now (with who signed it), or raise UserFacingError
    saying why not: no 校 step open, a stale card or page, not a proofreader, signed already."""
    chain = scope.settings.chain_for(draft.category, draft.important)
    open_proof = (
        chain.proof_after(draft.stage) if draft.status == "in_review" and draft.step == "proof" else None
    )
    stale = card is not None and (
        card.step != "proof"
        or card.closed
        or (card.version, card.round, card.stage) != (draft.version, draft.round, draft.stage)
    )
    if seen is not None and seen != (draft.version, draft.round, draft.stage):
        stale = True
    if stale and open_proof is not None:
        scope.log.info("proof by %s on draft %s refused: stale card or page", scope.user, draft.id)
        raise UserFacingError(
            views.page_stale(draft) if seen is not None else views.refusal_text(Refusal.STALE, draft, "")
        )
    signed = await proof_signed_by(scope, draft) if open_proof is not None else []
    refusal = check_may_proof(
        open_proof,
        proofreader=scope.user,
        staff=scope.staff,
        signed_by=[r.proofreader_userid for r in signed],
    )
    if refusal is not None:
        scope.log.info("proof by %s on draft %s refused: %s", scope.user, draft.id, refusal.value)
        raise UserFacingError(
            views.proof_refusal(draft, open_proof.name if open_proof else None, refusal.value)
        )
    assert open_proof is not None
    return chain, open_proof, signed


async def sign_proof(
    scope: Scope,
    draft: Draft,
    *,
    result: str,
    note: str,
    card: ApprovalCard | None,
    response_code: str | None,
    via: str,
    seen: tuple[int, int, int] | None = None,
) -> Done:
    """Record `scope.user`'s signature on the open 校 step, or raise UserFacingError (no change).

    `result` is passed (校对无误) or changed (有修改, `note` says what was corrected). A card of
    another version, round or stage, or a page showing one, is stale.
    """
    if result not in RESULTS:
        raise UserFacingError(views.UNKNOWN_CARD)
    chain, open_proof, signed = await open_proof_for(scope, draft, card=card, seen=seen)
    assert draft.id is not None
    if result == "changed" and not note.strip():
        raise UserFacingError(views.ask_proof_note(draft, open_proof.name))
    now = scope.now()
    record = ProofRecord(
        draft_id=draft.id,
        version=draft.version,
        round=draft.round,
        after_stage=draft.stage,
        proof_name=open_proof.name,
        method=open_proof.method,
        proofreader_userid=scope.user,
        proofreader_name=scope.name_of(scope.user),
        result=result,
        note=note.strip()[:2000],
        via=via,
        at=now,
    )
    if not await drafts_repo.add_unless_taken(session=scope.session, row=record):
        raise UserFacingError(views.proof_refusal(draft, open_proof.name, "already_signed"))
    await append_audit(
        session=scope.session,
        bind=record,
        at=now,
        actor=scope.user,
        action="proof",
        draft_id=draft.id,
        details={
            "version": draft.version,
            "stage": draft.stage,
            "stage_name": open_proof.name,
            "method": open_proof.method,
            "result": result,
            "via": via,
            **({"note": record.note} if record.note else {}),
            "proof_id": record.id,
            "record": record_digest(proof_fields(record)),
        },
    )
    signers = [*[r.proofreader_userid for r in signed], scope.user]
    label = views.proof_done_label(open_proof.name, result, scope.name_of(scope.user))
    if not proof_complete(open_proof, signers):
        if response_code:
            scope.outbox.update_card(response_code, replace_name=label, userids=[scope.user])
        missing = [u for u in proofreaders(open_proof, scope.staff) if u not in signers]
        who = views.names(missing, staff_names(scope))
        return Done(
            draft,
            views.proof_waiting(
                draft,
                open_proof.name,
                open_proof.method,
                who if len(missing) == 1 else f"其中任一位（{who}）",
            ),
        )
    clicked = card.id if card is not None and response_code else None
    if response_code:
        scope.outbox.update_card(response_code, replace_name=label, card_id=clicked)
    await close_open_cards(scope, draft, label, except_card=clicked)
    names = "、".join(scope.name_of(u) for u in signers)
    await move_past_stage(
        scope,
        draft,
        chain,
        await current_decisions(scope, draft),
        passed=open_proof.name,
        by=names,
        verb="已完成",
    )
    return Done(draft, views.proof_recorded(draft, open_proof.name, result))
