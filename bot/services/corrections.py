"""After an error is found in a published draft (湛江 第十七条 补救措施; 钦州 五(三) 错情评估): 纠错 (the
draft goes back to its submitter for a corrected version that passes the whole chain again), 撤稿
(the publishers take it down and confirm), and the 错情 record of each with who signed the version."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot import views
from bot.core.config import ERROR_KIND_LABELS, ERROR_KINDS
from bot.core.errors import UserFacingError, refuse_if_longer
from bot.rules.calendar import people_with_role
from bot.rules.review import stage_of, stages_passed
from bot.services.recheck import MAX_NOTE, recheck_subject
from bot.services.review import close_open_cards, load_draft
from bot.services.scope import Scope, is_admin
from storage.account_models import Account, AccountPost, Recheck
from storage.audit_repo import append_audit
from storage.models import Draft, ErrorCase, ProofRecord, StageDecision

MAX_DESCRIPTION = 500  # ErrorCase.description
# who may record a correction or a retraction besides admins (a correction also its submitter)
ACTING_ROLES = ("publisher", "leader", "principal")


@dataclass(frozen=True)
class CorrectionDone:
    """The draft acted on, the 错情 recorded, and what the person who acted is told."""

    draft: Draft
    case: ErrorCase
    message: str


def error_kind(word: str) -> str:
    if word not in ERROR_KINDS:
        raise UserFacingError(f"错情种类“{word}”不认识，应为：{'、'.join(ERROR_KINDS)}。")
    return ERROR_KINDS[word]


async def signers_of(scope: Scope, draft: Draft) -> list[dict[str, str]]:
    """Everyone who passed `draft`'s current version in its last round: each 审 approval and each
    校 signature, in order, with their stage."""
    decisions = (
        await scope.session.exec(
            select(StageDecision)
            .where(
                StageDecision.draft_id == draft.id,
                StageDecision.version == draft.version,
                StageDecision.decision == "approve",
            )
            .order_by(col(StageDecision.id))
        )
    ).all()
    proofs = (
        await scope.session.exec(
            select(ProofRecord)
            .where(ProofRecord.draft_id == draft.id, ProofRecord.version == draft.version)
            .order_by(col(ProofRecord.id))
        )
    ).all()
    last_round = max([d.round for d in decisions] + [p.round for p in proofs], default=0)
    signed = [
        (d.decided_at, d.stage_name, d.reviewer_userid, d.reviewer_name)
        for d in decisions
        if d.round == last_round
    ]
    signed += [
        (p.at, p.proof_name, p.proofreader_userid, p.proofreader_name)
        for p in proofs
        if p.round == last_round
    ]
    return [
        {"stage": stage, "userid": userid, "name": name, "at": at.isoformat()}
        for at, stage, userid, name in sorted(signed)
    ]


async def _record_case(scope: Scope, draft: Draft, kind: str, description: str, action: str) -> ErrorCase:
    description = description.strip()
    if not description:
        raise UserFacingError("请写明错在哪里（如：第二段“防讯”应为“防汛”）。")
    refuse_if_longer(description, MAX_DESCRIPTION, "说明")
    assert draft.id is not None
    case = ErrorCase(
        draft_id=draft.id,
        version=draft.version,
        kind=kind,
        description=description,
        action=action,
        recorded_by=scope.user,
        recorded_at=scope.now(),
        signers=await signers_of(scope, draft),
    )
    scope.session.add(case)
    await scope.session.flush()
    return case


async def _published_draft(scope: Scope, number: int, *, submitter_may: bool) -> Draft:
    draft = await load_draft(scope, number)
    member = scope.staff.get(scope.user)
    allowed = is_admin(scope) or (member is not None and any(r in member.roles for r in ACTING_ROLES))
    if not allowed and not (submitter_may and draft.submitter_userid == scope.user):
        scope.log.info("correction of draft %s by %s refused", draft.id, scope.user)
        raise UserFacingError("只有发布人员、领导和管理员（纠错还有投稿人）可以登记纠错或撤稿。")
    if draft.status != "approved":
        status = views.STATUS_LABELS.get(draft.status, draft.status)
        raise UserFacingError(
            f"{views.draft_label(draft)}当前为“{status}”，只有已通过三审的稿件才能纠错或撤稿。"
        )
    return draft


async def _error_in_published(
    scope: Scope, number: int, kind_word: str, text: str, *, action: str
) -> tuple[Draft, ErrorCase, datetime]:
    """What 纠错 and 撤稿 share: the draft passed 三审, the person may act, the 错情 is recorded and
    the draft leaves 已通过 (back to its submitter, or retracted for good)."""
    kind = error_kind(kind_word)
    draft = await _published_draft(scope, number, submitter_may=action == "correct")
    case = await _record_case(scope, draft, kind, text, action)
    now = scope.now()
    draft.status, draft.updated_at = ("rejected" if action == "correct" else "retracted"), now
    scope.session.add(draft)
    return draft, case, now


async def correct_draft(scope: Scope, number: int, kind_word: str, description: str) -> CorrectionDone:
    """纠错: the 错情 is recorded and the draft goes back to its submitter, who sends the corrected
    version (/revise); it then passes the whole chain again before it is published again."""
    draft, case, now = await _error_in_published(scope, number, kind_word, description, action="correct")
    kind = case.kind
    short = scope.settings.review.typo_correction_stages if kind == "typo" else ()
    draft.correction_stages = ",".join(str(s) for s in short)
    chain = scope.settings.chain_for(draft.category, draft.important)
    passes = "、".join(stage_of(chain, s).name for s in stages_passed(chain, draft.correction_stages))
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="correct",
        draft_id=draft.id,
        details={"case": case.id, "version": draft.version, "kind": kind, "description": case.description},
    )
    label = views.draft_label(draft)
    if draft.submitter_userid != scope.user:
        scope.outbox.send_text(
            [draft.submitter_userid],
            f"【纠错】{label}（第{draft.version}版）发布后发现{ERROR_KIND_LABELS[kind]}问题：{case.description}。"
            f"{scope.name_of(scope.user)}已登记错情并退回，请修改后发送 /revise {draft.id} 重新送审（{passes}）；"
            "审核通过后请重新发布并登记。",
        )
    return CorrectionDone(
        draft,
        case,
        (
            f"已登记错情{case.id}号（{ERROR_KIND_LABELS[kind]}）：{label}已退回投稿人修改，修改稿须重新经过"
            + (f"{passes}（错别字纠错短流程）。" if short else "三审。")
            + f"原稿签发人：{signers_text(case)}。"
        ),
    )


async def retract_draft(scope: Scope, number: int, kind_word: str, reason: str) -> CorrectionDone:
    """撤稿: the 错情 is recorded, the draft is retracted for good, and whoever published it on each
    account gets a card to confirm it was taken down."""
    draft, case, now = await _error_in_published(scope, number, kind_word, reason, action="retract")
    kind = case.kind
    await close_open_cards(scope, draft, "已撤稿")
    for recheck in (
        await scope.session.exec(
            select(Recheck).where(Recheck.draft_id == draft.id, col(Recheck.done_at).is_(None))
        )
    ).all():  # nothing left to re-check: its cards greyed, its reminders stop
        recheck.done_at, recheck.done_by, recheck.outcome = now, scope.user, "problem"
        recheck.note = f"已撤稿：{case.description}"[:MAX_NOTE]
        scope.session.add(recheck)
        await scope.outbox.close_cards(recheck_subject(recheck), replace_name="已撤稿")
    posts = (
        await scope.session.exec(
            select(AccountPost, Account.name)
            .join(Account, col(Account.id) == AccountPost.account_id)
            .where(AccountPost.draft_id == draft.id, col(AccountPost.taken_down_at).is_(None))
            .order_by(col(AccountPost.id))
        )
    ).all()
    for post, account in posts:
        assert post.id is not None
        task_id = f"sanshen-rt-{post.id}-{secrets.token_hex(4)}"
        scope.outbox.send_card([post.recorded_by], views.takedown_card(draft, case, post, account, task_id))
    if not posts:
        admins = [a for a in people_with_role(scope.settings, "admin") if a != scope.user]
        scope.outbox.send_text(
            admins, f"【撤稿】{views.draft_label(draft)}已撤稿（{case.description}），没有登记过发布记录。"
        )
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="retract",
        draft_id=draft.id,
        details={
            "case": case.id,
            "version": draft.version,
            "kind": kind,
            "reason": case.description,
            "posts": [post.id for post, _ in posts],
        },
    )
    where = "、".join(f"“{account}”" for _, account in posts) or "（无发布记录）"
    return CorrectionDone(
        draft,
        case,
        (
            f"已登记错情{case.id}号（{ERROR_KIND_LABELS[kind]}）：{views.draft_label(draft)}已撤稿，"
            f"已通知发布人撤下 {where} 上的稿件并确认。原稿签发人：{signers_text(case)}。"
        ),
    )


async def confirm_takedown(scope: Scope, post_id: int, *, response_code: str = "") -> str:
    """The publisher (or an admin) confirms a retracted draft's post is taken down."""
    post = await scope.session.get(AccountPost, post_id, with_for_update=True)
    draft = await scope.session.get(Draft, post.draft_id) if post is not None and post.draft_id else None
    if post is None or draft is None or draft.status != "retracted":
        raise UserFacingError(views.UNKNOWN_CARD)
    if post.taken_down_at is not None:
        raise UserFacingError(f"已由{scope.name_of(post.taken_down_by)}确认撤下，本次操作未生效。")
    if scope.user != post.recorded_by and not is_admin(scope):
        raise UserFacingError(f"应由发布人{scope.name_of(post.recorded_by)}确认撤下，本次操作未生效。")
    now = scope.now()
    post.taken_down_at, post.taken_down_by = now, scope.user
    scope.session.add(post)
    if response_code:
        scope.outbox.update_card(response_code, replace_name=f"已撤下·{scope.name_of(scope.user)}"[:20])
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="takedown",
        draft_id=draft.id,
        details={"post": post.id, "url": post.url},
    )
    return f"已记录：{views.draft_label(draft)}已撤下。"


def signers_text(case: ErrorCase) -> str:
    return "，".join(f"{s['stage']} {s['name']}" for s in case.signers) or "（无记录）"


async def error_cases(scope: Scope, limit: int = 20) -> list[tuple[ErrorCase, Draft]]:
    """The newest 错情, each with its draft."""
    rows = await scope.session.exec(
        select(ErrorCase, Draft)
        .join(Draft, col(Draft.id) == ErrorCase.draft_id)
        .order_by(col(ErrorCase.id).desc())
        .limit(limit)
    )
    return [(case, draft) for case, draft in rows.all()]
