"""The 三审 service: start a stage, decide, revise, close cards — one path for card, command, page and sweep."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from bot import views
from bot.core.config import ChainSettings
from bot.core.errors import UserFacingError
from bot.documents.docx_html import text_to_html
from bot.rules.audit_chain import record_digest
from bot.rules.calendar import people_with_role
from bot.rules.content import VersionContent
from bot.rules.proof import proofreaders
from bot.rules.review import (
    PastDecision,
    Refusal,
    apply_delegations,
    check_may_decide,
    decided_other_stages,
    decision_slot,
    eligible_roles,
    expand_assignees,
    in_round,
    is_eligible,
    next_stage,
    outcome_after,
    stage_of,
    stages_passed,
)
from bot.rules.submission import DraftMeta
from bot.services import findings
from bot.services.scope import Scope
from storage import direct, drafts_repo
from storage.audit_repo import append_audit, decision_fields, draft_fields
from storage.models import ApprovalCard, Draft, ProofRecord, StageDecision

MAX_BODY_CHARS = 200_000
# Roles that may read every draft (the 科室负责人, leaders, admins and publishers).
VIEW_ALL_ROLES = frozenset({"reviewer", "leader", "principal", "admin", "publisher"})


@dataclass(frozen=True)
class Done:
    """What a service did: the draft it acted on, and what the person who acted is told (if anything)."""

    draft: Draft
    message: str | None


async def load_draft(scope: Scope, number: int, *, lock: bool = True) -> Draft:
    draft = await drafts_repo.get_draft(session=scope.session, draft_id=number, lock=lock)
    if draft is None:
        raise UserFacingError(views.draft_not_found(str(number)))
    return draft


async def current_decisions(scope: Scope, draft: Draft) -> list[PastDecision]:
    """Every decision of the current version (all rounds)."""
    assert draft.id is not None
    rows = await drafts_repo.version_decisions(
        session=scope.session, draft_id=draft.id, version=draft.version, round_=draft.round
    )
    return [PastDecision(*row) for row in rows]


@dataclass(frozen=True)
class StagePeople:
    """Who may decide the current stage now, and whom each delegate stands in for."""

    assignees: tuple[str, ...]
    on_behalf: dict[str, str]  # delegate → away reviewer
    mode: str = "any"  # any: 或签; all: 会签 (by the chain, or by a 加签)


async def stage_people(
    scope: Scope, chain: ChainSettings, draft: Draft, decisions: list[PastDecision]
) -> StagePeople:
    """The chain's assignees, or a 转审's or 加签's, with people who are away replaced by delegates."""
    assert draft.id is not None
    stage, submitter = draft.stage, draft.submitter_userid
    elsewhere = decided_other_stages(decisions, stage)
    transferred = await drafts_repo.stage_assignment(
        session=scope.session, draft_id=draft.id, version=draft.version, round_=draft.round, stage=stage
    )
    roles = eligible_roles(chain, stage)
    staff = scope.staff

    def eligible(userid: str) -> bool:
        return is_eligible(staff.get(userid), roles)

    stage_settings = stage_of(chain, stage)
    mode: str = stage_settings.mode
    if transferred is not None:
        base = tuple(u for u in transferred.assignees.split("|") if u not in elsewhere and eligible(u))
        mode = transferred.mode or mode
    else:
        base = expand_assignees(
            stage_settings,
            stage=stage,
            submitter=submitter,
            staff=scope.staff,
            decided_elsewhere=elsewhere,
        )
    delegates = await drafts_repo.active_delegates(session=scope.session, userids=base, at=scope.now())
    effective = apply_delegations(
        base,
        delegates,
        submitter=submitter,
        stage=stage,
        decided_elsewhere=elsewhere,
        eligible=eligible,
    )
    on_behalf = {delegates[u]: u for u in base if delegates.get(u) in effective and delegates[u] != u}
    return StagePeople(effective, on_behalf, mode)


async def start_stage(
    scope: Scope,
    draft: Draft,
    decisions: list[PastDecision],
    *,
    only: tuple[str, ...] | None = None,
) -> tuple[str, ...]:
    """Send the current stage's full text and approval card to its assignees (or `only`)."""
    chain = scope.settings.chain_for(draft.category, draft.important)
    stage_settings = stage_of(chain, draft.stage)
    people = await stage_people(scope, chain, draft, decisions)
    assignees = people.assignees
    if not assignees:
        raise UserFacingError(views.no_assignees(stage_settings.name))
    if only is not None:
        assignees = tuple(u for u in assignees if u in only)
        if not assignees:
            return assignees
    assert draft.id is not None
    body = await drafts_repo.get_body(session=scope.session, draft_id=draft.id, version=draft.version)
    page = draft_page_url(scope, draft)
    if page is None:  # no pages configured: the body goes to chat, split to fit
        scope.outbox.send_text(assignees, views.full_text(draft, body, stage_settings.name))
    else:
        scope.outbox.send_text(assignees, views.stage_preview(draft, body, stage_settings.name))
    card = await drafts_repo.add_card(
        session=scope.session, draft=draft, recipients=assignees, at=scope.now(), nonce=card_nonce()
    )
    assert card.id is not None
    payload = views.approval_card(
        draft,
        stage=draft.stage,
        stage_name=stage_settings.name,
        stage_count=len(chain.stages),
        mode=people.mode,
        task_id=card.task_id,
        card_id=card.id,
        tz=scope.settings.tz,
        page_url=page,
        proofread=chain.proofreading,
        important=draft.important,
        secrecy=draft.stage == chain.secrecy_stage,
    )
    scope.outbox.send_card(assignees, payload, card_id=card.id)
    return assignees


async def close_open_cards(scope: Scope, draft: Draft, label: str, *, except_card: int | None = None) -> None:
    """Close every still-open card of the draft (`except_card` too) and grey them for all their
    holders (send response_code), but `except_card`, which its caller greys itself. (The
    greying is queued when the closing has run: on PostgreSQL with the next write, before the
    commit.)"""
    assert draft.id is not None

    def grey(closed: list[tuple[int, str | None]]) -> None:
        for card_id, response_code in closed:
            if card_id != except_card and response_code:
                scope.outbox.update_card(response_code, replace_name=label, card_id=card_id)

    await drafts_repo.close_open_cards(session=scope.session, draft_id=draft.id, then=grey)


def card_nonce() -> str:
    """12 hex digits that tell one stage's cards apart in their task_id (a 转审, a card sent
    again). Unique is all it must be — a task_id is shown to the card's holders and proves
    nothing; WeCom signs the callbacks — so it comes from the process's pseudo-random generator
    (seeded from the OS, reseeded after a fork), not a system call a card."""
    return f"{random.getrandbits(48):012x}"


def draft_page_url(scope: Scope, draft: Draft) -> str | None:
    """The draft's page for card links, or None when `[server] public_url` is not set."""
    base = scope.settings.server.public_url
    return f"{base}/app/drafts/{draft.id}/" if base else None


def revise_page_url(scope: Scope, draft: Draft) -> str | None:
    base = scope.settings.server.public_url
    return f"{base}/app/submit?revise={draft.id}" if base else None


def text_content(body: str) -> VersionContent:
    """A body typed in chat (or on the page) as a version's content."""
    return VersionContent(body=body, body_html=text_to_html(body), source="text")


def content_details(content: VersionContent) -> dict[str, object]:
    """What the audit chain records of a version's content: its hash and its files' hashes."""
    details: dict[str, object] = {"content_sha256": content.content_sha256, "source": content.source}
    if content.files:
        details["files"] = [f"{f.role}:{f.sha256}" for f in content.files]
    return details


def step_name(chain: ChainSettings, draft: Draft) -> str:
    """The name of what a draft in review waits for: its 审 stage, or the 校 step after it."""
    step = chain.proof_after(draft.stage) if draft.step == "proof" else None
    return step.name if step is not None else stage_of(chain, draft.stage).name


async def may_view(scope: Scope, draft: Draft) -> bool:
    """The rules of /draft and the draft page: the people involved, reviewers, leaders, admins."""
    member = scope.staff.get(scope.user)
    if member is not None and VIEW_ALL_ROLES & set(member.roles):
        return True
    if draft.submitter_userid == scope.user:
        return True
    assert draft.id is not None
    if scope.user in await drafts_repo.list_watchers(session=scope.session, draft_id=draft.id):
        return True
    decided = await drafts_repo.list_decisions(session=scope.session, draft_id=draft.id)
    if any(d.reviewer_userid == scope.user or d.on_behalf_of == scope.user for d in decided):
        return True
    if any(
        r.proofreader_userid == scope.user
        for r in await drafts_repo.list_proofs(session=scope.session, draft_id=draft.id)
    ):
        return True
    if draft.status == "in_review":
        if draft.step == "proof":
            return scope.user in (await waiting_on(scope, draft))[1]
        chain = scope.settings.chain_for(draft.category, draft.important)
        people = await stage_people(scope, chain, draft, await current_decisions(scope, draft))
        return scope.user in people.assignees or scope.user in people.on_behalf.values()
    return False


def staff_names(scope: Scope) -> dict[str, str]:
    return scope.settings.staff_names


async def create_draft(scope: Scope, title: str, meta: DraftMeta, content: VersionContent) -> Done:
    """A new draft from `scope.user`, its 一审 cards queued."""
    now = scope.now()
    keywords = [k for k in scope.settings.review.important_keywords if k in title or k in content.body]
    important = meta.important or bool(keywords)
    if important and not scope.settings.has_principal:
        raise UserFacingError(views.no_principal())
    draft = Draft(
        title=title[:200],
        important=important,
        category=meta.category,
        source_kind=meta.source_kind,
        source_note=meta.source_note,
        disclosure=meta.disclosure,
        platforms=",".join(meta.platforms),
        submitter_userid=scope.user,
        submitter_name=scope.name_of(scope.user),
        status="in_review",
        version=1,
        stage=1,
        stage_entered_at=now,
        created_at=now,
        updated_at=now,
    )
    found = await findings.check_body(scope, draft, content.body)  # before the 一审 card shows it
    await drafts_repo.add_draft(session=scope.session, draft=draft, content=content, findings=found)
    assert draft.id is not None  # add_draft flushed it
    assignees = await start_stage(scope, draft, [])
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="submit",
        draft_id=draft.id,
        details={
            "title": draft.title,
            "version": 1,
            "category": draft.category,
            **content_details(content),
            "form": record_digest(draft_fields(draft)),
            **findings.audit_details(draft),
            **({"important": keywords or "投稿人标注"} if important else {}),
        },
    )
    copied = [u for u in scope.settings.review.cc_on_submit if u != scope.user]
    for userid in copied:
        await drafts_repo.add_watcher(
            session=scope.session, draft_id=draft.id, userid=userid, by="config", at=now
        )
    if copied:
        scope.outbox.send_text(copied, views.copied_notice(draft, scope.name_of(scope.user)))
    chain = scope.settings.chain_for(draft.category, draft.important)
    return Done(
        draft, views.submit_received(draft, chain.stages[0].name, views.names(assignees, staff_names(scope)))
    )


async def refusal_for(
    scope: Scope,
    chain: ChainSettings,
    draft: Draft,
    card: ApprovalCard | None,
    decisions: list[PastDecision],
    people: StagePeople | None = None,
    *,
    quiet: bool = False,
) -> str | None:
    """The Chinese reason the current person may not decide now, or None; a refusal is logged
    unless `quiet` (a page showing why its form is absent is not an attempt)."""
    if draft.status == "in_review" and draft.step == "proof":
        proof = chain.proof_after(draft.stage)
        if not quiet:
            scope.log.info("decision by %s on draft %s refused: in proof", scope.user, draft.id)
        return views.in_proof(draft, proof.name if proof else "校对")
    acted_stage: int | None = None
    if card is not None:
        current = card.version == draft.version and card.round == draft.round and not card.closed
        acted_stage = card.stage if current else -1
    if people is None and draft.status == "in_review":
        people = await stage_people(scope, chain, draft, decisions)
    refusal = check_may_decide(
        chain,
        status=draft.status,
        current_stage=draft.stage,
        acted_stage=acted_stage,
        reviewer=scope.user,
        submitter=draft.submitter_userid,
        staff=scope.staff,
        decisions=decisions,
        current_round=draft.round,
        assignees=people.assignees if people is not None else None,
    )
    if refusal is None:
        return None
    if not quiet:
        scope.log.info("decision by %s on draft %s refused: %s", scope.user, draft.id, refusal.value)
    return views.refusal_text(refusal, draft, stage_of(chain, draft.stage).name)


# ---------------------------------------------------------------- decisions


async def decide(
    scope: Scope,
    draft: Draft,
    *,
    decision: str,
    opinion: str,
    card: ApprovalCard | None,
    response_code: str | None,
    via: str,
    checklist: Sequence[str] = (),
    seen: tuple[int, int, int] | None = None,
) -> Done:
    """Record one decision and everything it implies, or raise UserFacingError (no change).

    `decision` is approve, reject, or classified (涉密不得公开, only at the chain's 保密审查 stage:
    recorded as a 不同意 whose conclusion stops the draft for good). At that stage 同意 records
    the conclusion 不涉密. `checklist` holds the items the reviewer ticked (page only). `seen` is
    the (version, round, stage) the reviewer's page showed: a decision on anything else is stale.
    """
    chain = scope.settings.chain_for(draft.category, draft.important)
    stage_settings = stage_of(chain, draft.stage)
    secrecy_stage = draft.stage == chain.secrecy_stage
    if decision == "classified" and not secrecy_stage:
        raise UserFacingError(views.not_secrecy_stage(draft, stage_of(chain, chain.secrecy_stage).name))
    secrecy = (
        ("classified" if decision == "classified" else "clear" if decision == "approve" else "")
        if secrecy_stage
        else ""
    )
    recorded = "reject" if decision == "classified" else decision
    decisions = await current_decisions(scope, draft)
    people = await stage_people(scope, chain, draft, decisions)
    if seen is not None and seen != (draft.version, draft.round, draft.stage):
        scope.log.info("page decision by %s on draft %s refused: stale page %s", scope.user, draft.id, seen)
        raise UserFacingError(views.page_stale(draft))
    refusal = await refusal_for(scope, chain, draft, card, decisions, people)
    if refusal is not None:
        raise UserFacingError(refusal)
    marks = await findings.marks_for_approval(scope, draft) if decision == "approve" else {}
    ticked = [item for item in views.checklist_for(draft.stage) if item in set(checklist)]
    assignees = people.assignees
    now = scope.now()
    assert draft.id is not None
    row = direct.record(
        StageDecision,
        draft_id=draft.id,
        version=draft.version,
        round=draft.round,
        stage=draft.stage,
        stage_name=stage_settings.name,
        slot=decision_slot(people.mode, scope.user),
        reviewer_userid=scope.user,
        reviewer_name=scope.name_of(scope.user),
        decision=recorded,
        opinion=opinion,
        decided_at=now,
        via=via,
        secrecy=secrecy,
        checklist=ticked,
        on_behalf_of=people.on_behalf.get(scope.user, ""),
        finding_marks=marks,
    )
    if not await drafts_repo.add_unless_taken(session=scope.session, row=row):
        # Another reviewer's decision for this slot committed first: exactly one counts.
        raise UserFacingError(views.already_decided_by_other(draft, stage_settings.name))
    await append_audit(
        session=scope.session,
        bind=row,
        at=now,
        actor=scope.user,
        action=decision,
        draft_id=draft.id,
        details={
            "version": draft.version,
            "stage": draft.stage,
            "stage_name": stage_settings.name,
            "opinion": opinion,
            "via": via,
            **({"secrecy": secrecy} if secrecy else {}),
            **({"checklist": ticked} if ticked else {}),
            **({"on_behalf_of": row.on_behalf_of} if row.on_behalf_of else {}),
            **({"finding_marks": marks} if marks else {}),
            # The row the 保密审查表 prints, bound to the chain: editing it fails verify-audit.
            "decision_id": row.id,
            "record": record_digest(decision_fields(row)),
        },
    )
    stage_rows = [*decisions, PastDecision(draft.stage, scope.user, recorded, draft.round)]
    outcome = outcome_after(
        chain,
        stage=draft.stage,
        decision=recorded,
        stage_decisions=in_round(stage_rows, draft.stage, draft.round),
        assignees=assignees,
        mode=people.mode,
        only=draft.correction_stages,
    )
    label = views.card_done_label(stage_settings.name, decision, scope.name_of(scope.user))
    if outcome.kind == "wait":
        if response_code:
            scope.outbox.update_card(response_code, replace_name=label, userids=[scope.user])
        approved_by = {d.reviewer for d in in_round(stage_rows, draft.stage, draft.round)}
        missing = [a for a in assignees if a not in approved_by]
        return Done(
            draft, views.waiting_cosign(draft, stage_settings.name, views.names(missing, staff_names(scope)))
        )
    clicked_card = card.id if card is not None and response_code else None
    if response_code:
        scope.outbox.update_card(response_code, replace_name=label, card_id=clicked_card)
    await close_open_cards(scope, draft, label, except_card=clicked_card)  # the clicked one too
    reviewer_name = scope.name_of(scope.user)
    if secrecy == "classified":  # 涉密不得公开: the end of this draft, whatever version
        await drafts_repo.update_draft(
            session=scope.session, draft=draft, status="classified", updated_at=now
        )
        admins = people_with_role(scope.settings, "admin")
        scope.outbox.send_text(
            list(dict.fromkeys([draft.submitter_userid, *admins])),
            views.classified_notice(draft, stage_settings.name, reviewer_name, opinion),
        )
    elif outcome.kind == "rejected":
        await drafts_repo.update_draft(session=scope.session, draft=draft, status="rejected", updated_at=now)
        scope.outbox.send_text(
            [draft.submitter_userid],
            views.rejected_notice(
                draft, stage_settings.name, reviewer_name, opinion, revise_page_url(scope, draft)
            ),
        )
    else:
        await stage_approved(scope, draft, chain, stage_rows, by=reviewer_name)
    if scope.user == draft.submitter_userid:
        return Done(draft, None)  # the submitter's own 一审: the notice above already told them
    return Done(draft, views.decision_recorded(draft, stage_settings.name, decision, secrecy))


async def stage_approved(
    scope: Scope, draft: Draft, chain: ChainSettings, decisions: list[PastDecision], *, by: str
) -> None:
    """The 审 of `draft.stage` is complete: open the 校 step after it, if there is one, else
    move past it."""
    proof = chain.proof_after(draft.stage)
    if proof is None:
        await move_past_stage(scope, draft, chain, decisions, passed=stage_of(chain, draft.stage).name, by=by)
        return
    now = scope.now()
    await drafts_repo.update_draft(
        session=scope.session, draft=draft, step="proof", stage_entered_at=now, updated_at=now
    )
    people = await start_proof(scope, draft, chain)
    scope.outbox.send_text(
        [draft.submitter_userid],
        views.stage_passed(
            draft, stage_of(chain, draft.stage).name, by, proof.name, views.names(people, staff_names(scope))
        ),
    )


async def move_past_stage(
    scope: Scope,
    draft: Draft,
    chain: ChainSettings,
    decisions: list[PastDecision],
    *,
    passed: str,
    by: str,
    verb: str = "已同意",
) -> None:
    """`draft.stage` is done (its 审, and its 校 if any): the next stage starts, or after the
    last one the draft is approved (可发布)."""
    now = scope.now()
    following = next_stage(chain, draft.stage, draft.correction_stages)
    if following is None:
        await drafts_repo.update_draft(
            session=scope.session,
            draft=draft,
            status="approved",
            approved_at=now,
            step="review",
            updated_at=now,
        )
        await append_audit(
            session=scope.session,
            at=now,
            actor="system",
            action="approved",
            draft_id=draft.id,
            details={"version": draft.version},
        )
        assert draft.id is not None
        watchers = await drafts_repo.list_watchers(session=scope.session, draft_id=draft.id)
        notify = list(
            dict.fromkeys(
                [
                    draft.submitter_userid,
                    *people_with_role(scope.settings, "publisher"),
                    *watchers,
                    *scope.settings.review.cc_on_approval,
                ]
            )
        )
        scope.outbox.send_text(notify, views.approved_notice(draft, chain.proofreading))
        return
    await drafts_repo.update_draft(
        session=scope.session,
        draft=draft,
        stage=following,
        stage_entered_at=now,
        step="review",
        updated_at=now,
    )
    next_assignees = await start_stage(scope, draft, decisions)
    scope.outbox.send_text(
        [draft.submitter_userid],
        views.stage_passed(
            draft,
            passed,
            by,
            stage_of(chain, draft.stage).name,
            views.names(next_assignees, staff_names(scope)),
            verb,
        ),
    )


async def proof_signed_by(scope: Scope, draft: Draft) -> list[ProofRecord]:
    """Who signed the open 校 step (this version, round and stage)."""
    assert draft.id is not None
    return list(
        await drafts_repo.list_proofs(
            session=scope.session,
            draft_id=draft.id,
            version=draft.version,
            round_=draft.round,
            after_stage=draft.stage,
        )
    )


async def start_proof(
    scope: Scope, draft: Draft, chain: ChainSettings, *, only: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    """Send the 校 step's card (and the preview) to its proofreaders who have not signed yet."""
    proof = chain.proof_after(draft.stage)
    assert proof is not None and draft.id is not None
    signed = {r.proofreader_userid for r in await proof_signed_by(scope, draft)}
    people = tuple(u for u in proofreaders(proof, scope.staff) if u not in signed)
    if only is not None:
        people = tuple(u for u in people if u in only)
    if not people:
        return people
    body = await drafts_repo.get_body(session=scope.session, draft_id=draft.id, version=draft.version)
    scope.outbox.send_text(people, views.proof_preview(draft, body, proof.name, proof.method))
    card = await drafts_repo.add_card(
        session=scope.session,
        draft=draft,
        recipients=people,
        at=scope.now(),
        nonce=card_nonce(),
        step="proof",
    )
    assert card.id is not None
    payload = views.proof_card(
        draft,
        proof_name=proof.name,
        method=proof.method,
        needed=proof.needed,
        task_id=card.task_id,
        card_id=card.id,
        tz=scope.settings.tz,
        page_url=draft_page_url(scope, draft),
    )
    if draft.important:
        payload["sub_title_text"] += views.IMPORTANT_MARK
    scope.outbox.send_card(people, payload, card_id=card.id)
    return people


# ---------------------------------------------------------------- revise


async def revise_draft(scope: Scope, number: int, content: VersionContent) -> Done:
    """A new version by its submitter: open cards grey out and review starts again at 一审."""
    draft = await load_draft(scope, number)
    if draft.submitter_userid != scope.user:
        raise UserFacingError(f"只有投稿人可以修改{views.draft_label(draft)}。")
    if draft.status not in ("rejected", "in_review"):
        raise UserFacingError(
            views.refusal_text(Refusal.NOT_IN_REVIEW, draft, "").replace("不在审核中", "不能再修改")
        )
    if len(content.body) > MAX_BODY_CHARS:
        raise UserFacingError(f"正文过长（超过{MAX_BODY_CHARS}字）。")
    await close_open_cards(scope, draft, views.CARD_STALE_LABEL)
    now = scope.now()
    chain = scope.settings.chain_for(draft.category, draft.important)
    draft.version += 1
    draft.stage = stages_passed(chain, draft.correction_stages)[0]
    draft.step = "review"  # a revision restarts at 一审 (or a short chain's first), whatever 校 step was open
    draft.status = "in_review"
    draft.stage_entered_at = now
    draft.updated_at = now
    scope.session.add(draft)
    found = await findings.check_body(scope, draft, content.body)
    await drafts_repo.add_version(
        session=scope.session, draft=draft, content=content, findings=found, at=now, by=scope.user
    )
    assignees = await start_stage(scope, draft, [])
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="revise",
        draft_id=draft.id,
        details={"version": draft.version, **content_details(content), **findings.audit_details(draft)},
    )
    return Done(
        draft,
        views.revised_notice(
            draft, stage_of(chain, draft.stage).name, views.names(assignees, staff_names(scope))
        ),
    )


async def waiting_on(scope: Scope, draft: Draft) -> tuple[str, tuple[str, ...]]:
    """What a draft in review waits for now and on whom: its 审 stage's people who have not
    decided, or its open 校 step's proofreaders who have not signed."""
    chain = scope.settings.chain_for(draft.category, draft.important)
    if draft.step == "proof":
        proof = chain.proof_after(draft.stage)
        if proof is not None:
            signed = {r.proofreader_userid for r in await proof_signed_by(scope, draft)}
            return proof.name, tuple(u for u in proofreaders(proof, scope.staff) if u not in signed)
    decisions = await current_decisions(scope, draft)
    people = await stage_people(scope, chain, draft, decisions)
    decided = {d.reviewer for d in in_round(decisions, draft.stage, draft.round)}
    return stage_of(chain, draft.stage).name, tuple(u for u in people.assignees if u not in decided)


async def my_pending(scope: Scope) -> list[tuple[Draft, str]]:
    """Drafts whose current stage or 校 step waits on the caller, with its name."""
    mine: list[tuple[Draft, str]] = []
    for draft in await drafts_repo.list_in_review(session=scope.session):
        step_name, people = await waiting_on(scope, draft)
        if scope.user in people:
            mine.append((draft, step_name))
    return mine
