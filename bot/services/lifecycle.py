"""The review lifecycle beyond 同意/不同意: 撤回, 转审, 退回, 抄送, 催办 and 代理 (away/delegate)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlmodel import col, select

from bot import views
from bot.core.config import ChainSettings
from bot.core.errors import UserFacingError
from bot.rules.review import (
    PastDecision,
    decided_other_stages,
    eligible_roles,
    is_eligible,
    signing_roles,
    stage_of,
)
from bot.services.review import (
    Done,
    StagePeople,
    close_open_cards,
    current_decisions,
    load_draft,
    staff_names,
    stage_people,
    start_stage,
    waiting_on,
)
from bot.services.scope import Scope, is_admin
from storage import drafts_repo
from storage.audit_repo import append_audit
from storage.models import AuditEntry, Delegation, Draft, StageAssignment

MAX_AWAY_DAYS = 92


@dataclass(frozen=True)
class Away:
    """An away period set or ended: the delegate, how many waiting stages went to them, and what
    the person who acted is told."""

    delegate: str
    handed: int
    message: str


def require_staff_userid(scope: Scope, userid: str) -> str:
    if userid not in scope.staff:
        raise UserFacingError(f"人员名单中没有 {userid}，请核对 userid（可在通讯录中查看）。")
    return userid


async def in_review(scope: Scope, number: int) -> Draft:
    draft = await load_draft(scope, number)
    if draft.status != "in_review":
        status = views.STATUS_LABELS.get(draft.status, draft.status)
        raise UserFacingError(f"{views.draft_label(draft)}当前状态为“{status}”，不在审核中。")
    return draft


async def require_current_reviewer_or_admin(scope: Scope, draft: Draft) -> StagePeople:
    """The stage's people; raises unless the person acting is one of them or an admin."""
    chain = scope.settings.chain_for(draft.category, draft.important)
    if draft.step == "proof":
        proof = chain.proof_after(draft.stage)
        raise UserFacingError(views.in_proof(draft, proof.name if proof else "校对"))
    people = await stage_people(scope, chain, draft, await current_decisions(scope, draft))
    if scope.user not in people.assignees and not is_admin(scope):
        stage_name = stage_of(chain, draft.stage).name
        raise UserFacingError(f"只有{views.draft_label(draft)}{stage_name}的审核人或管理员可以这样做。")
    return people


def check_new_reviewer(
    scope: Scope,
    draft: Draft,
    chain: ChainSettings,
    decisions: list[PastDecision],
    assignees: Sequence[str],
    target: str,
    *,
    action: str,
    already_ok: bool = False,
) -> None:
    """Refuse (saying why) a 转审 or 加签 to someone the rules keep out of this stage. `already_ok`:
    one of a 或签 stage's people may still be 加签'd (they then must sign, not merely may)."""
    stage_name = stage_of(chain, draft.stage).name
    if target == draft.submitter_userid and draft.stage > 1:
        raise UserFacingError(
            f"投稿人不能审核自己稿件的{stage_name}，不能{action}给{scope.name_of(target)}。"
        )
    if target in decided_other_stages(decisions, draft.stage):
        raise UserFacingError(
            f"{scope.name_of(target)}已审核过该稿件的其他环节，同一稿件的各审须由不同的人完成。"
        )
    if target in assignees and not already_ok:
        raise UserFacingError(f"{scope.name_of(target)}已是{stage_name}的审核人。")
    roles = eligible_roles(chain, draft.stage)
    if not is_eligible(scope.staff.get(target), roles):
        scope.log.info(
            "%s of draft %s to %s refused: not eligible for %s", action, draft.id, target, stage_name
        )
        raise UserFacingError(views.not_eligible_target(scope.name_of(target), stage_name, roles, action))


async def reassign_stage(
    scope: Scope,
    draft: Draft,
    decisions: list[PastDecision],
    people: Sequence[str],
    *,
    mode: str,
    reason: str,
    label: str,
) -> None:
    """Record who now holds the current stage (转审 or 加签), grey the old cards with `label`, and
    send the stage's cards to its people afresh."""
    assert draft.id is not None
    scope.session.add(
        StageAssignment(
            draft_id=draft.id,
            version=draft.version,
            round=draft.round,
            stage=draft.stage,
            assignees="|".join(people),
            mode=mode,
            reason=reason,
            by=scope.user,
            at=scope.now(),
        )
    )
    await scope.session.flush()
    await close_open_cards(scope, draft, label)
    await start_stage(scope, draft, decisions)


# ---------------------------------------------------------------- 加签 (联审)


async def cosign(scope: Scope, number: int, targets: Sequence[str], reason: str) -> Done:
    """Add joint reviewers (联审) to the current stage of one draft: it becomes a 会签 that the
    adding reviewer (or, when an admin adds, the stage's people) and every added person must approve."""
    if not reason.strip():
        raise UserFacingError("加签须写明理由（如：涉及专业内容，请××科室会签）。")
    for target in targets:
        require_staff_userid(scope, target)
    draft = await in_review(scope, number)
    people = await require_current_reviewer_or_admin(scope, draft)
    chain = scope.settings.chain_for(draft.category, draft.important)
    stage_name = stage_of(chain, draft.stage).name
    decisions = await current_decisions(scope, draft)
    for target in targets:
        check_new_reviewer(
            scope,
            draft,
            chain,
            decisions,
            people.assignees,
            target,
            action="加签",
            already_ok=people.mode != "all",
        )
    base = (scope.user,) if scope.user in people.assignees else people.assignees
    joint = tuple(dict.fromkeys([*base, *targets]))
    now = scope.now()
    await reassign_stage(scope, draft, decisions, joint, mode="all", reason=reason, label="已加签会签")
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="cosign",
        draft_id=draft.id,
        details={
            "version": draft.version,
            "stage": draft.stage,
            "stage_name": stage_name,
            "to": list(targets),
            "people": list(joint),
            "reason": reason,
        },
    )
    names = views.names(joint, staff_names(scope))
    scope.outbox.send_text(
        list(targets),
        f"{scope.name_of(scope.user)}请您联审（会签）{views.draft_label(draft)}的{stage_name}。理由：{reason}",
    )
    scope.outbox.send_text(
        [draft.submitter_userid], f"{views.draft_label(draft)}的{stage_name}改为会签：须{names}全部同意。"
    )
    return Done(draft, f"已加签：{views.draft_label(draft)}的{stage_name}须{names}全部同意（会签）。")


# ---------------------------------------------------------------- 撤回


async def withdraw(scope: Scope, number: int, reason: str) -> Done:
    """The submitter (or an admin) takes a draft back before it is approved; open cards grey out."""
    draft = await load_draft(scope, number)
    if draft.submitter_userid != scope.user and not is_admin(scope):
        raise UserFacingError(f"只有投稿人或管理员可以撤回{views.draft_label(draft)}。")
    if draft.status not in ("in_review", "rejected"):
        status = views.STATUS_LABELS.get(draft.status, draft.status)
        raise UserFacingError(f"{views.draft_label(draft)}当前状态为“{status}”，不能撤回。")
    holders: tuple[str, ...] = ()
    if draft.status == "in_review":
        _, holders = await waiting_on(scope, draft)  # the stage's reviewers, or the 校 step's proofreaders
    await close_open_cards(scope, draft, "稿件已撤回")
    now = scope.now()
    draft.status = "withdrawn"
    draft.updated_at = now
    scope.session.add(draft)
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="withdraw",
        draft_id=draft.id,
        details={"version": draft.version, "stage": draft.stage, "reason": reason},
    )
    others = [u for u in holders if u != scope.user]
    if others:
        scope.outbox.send_text(
            others, f"{views.draft_label(draft)}已由{scope.name_of(scope.user)}撤回，无需再审核。"
        )
    if draft.submitter_userid != scope.user:
        scope.outbox.send_text(
            [draft.submitter_userid],
            f"{views.draft_label(draft)}已由管理员{scope.name_of(scope.user)}撤回。{('理由：' + reason) if reason else ''}",
        )
    return Done(draft, f"已撤回{views.draft_label(draft)}。")


# ---------------------------------------------------------------- 转审


async def transfer(scope: Scope, number: int, target: str, reason: str) -> Done:
    """A current reviewer hands their part of the stage to `target`; an admin reassigns the whole stage."""
    if not reason.strip():
        raise UserFacingError("转审须写明理由。")
    require_staff_userid(scope, target)
    draft = await in_review(scope, number)
    people = await require_current_reviewer_or_admin(scope, draft)
    assignees, mode = people.assignees, people.mode  # a 加签's 会签 stays one after a 转审
    chain = scope.settings.chain_for(draft.category, draft.important)
    stage_name = stage_of(chain, draft.stage).name
    decisions = await current_decisions(scope, draft)
    check_new_reviewer(scope, draft, chain, decisions, assignees, target, action="转审")
    if scope.user in assignees:
        new_people = tuple(u if u != scope.user else target for u in assignees)
    else:
        new_people = (target,)  # an admin reassigns the whole stage
    now = scope.now()
    await reassign_stage(
        scope,
        draft,
        decisions,
        new_people,
        mode=mode,
        reason=reason,
        label=f"已转审给{scope.name_of(target)}",
    )
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="transfer",
        draft_id=draft.id,
        details={
            "version": draft.version,
            "stage": draft.stage,
            "stage_name": stage_name,
            "from": list(assignees),
            "to": list(new_people),
            "reason": reason,
        },
    )
    scope.outbox.send_text(
        [target],
        f"{scope.name_of(scope.user)}把{views.draft_label(draft)}的{stage_name}转给您审核。理由：{reason}",
    )
    scope.outbox.send_text(
        [draft.submitter_userid],
        f"{views.draft_label(draft)}的{stage_name}已由{scope.name_of(scope.user)}转给{scope.name_of(target)}审核。",
    )
    return Done(draft, f"已把{views.draft_label(draft)}的{stage_name}转给{scope.name_of(target)}。")


# ---------------------------------------------------------------- 退回


async def return_to_stage(scope: Scope, number: int, stage: int, reason: str) -> Done:
    """Send a draft back to an earlier stage (1-based): a new round starts there."""
    if not reason.strip():
        raise UserFacingError("退回须写明理由。")
    draft = await in_review(scope, number)
    chain = scope.settings.chain_for(draft.category, draft.important)
    if not 1 <= stage < draft.stage:
        current = stage_of(chain, draft.stage).name
        raise UserFacingError(f"只能退回到当前环节（{current}）之前的环节。")
    await require_current_reviewer_or_admin(scope, draft)
    from_name, to_name = stage_of(chain, draft.stage).name, stage_of(chain, stage).name
    await close_open_cards(scope, draft, f"已退回{to_name}")
    now = scope.now()
    from_stage = draft.stage
    draft.round += 1
    draft.stage = stage
    draft.step = "review"
    draft.stage_entered_at = now
    draft.updated_at = now
    scope.session.add(draft)
    await scope.session.flush()
    assignees = await start_stage(scope, draft, await current_decisions(scope, draft))
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="return",
        draft_id=draft.id,
        details={
            "version": draft.version,
            "from_stage": from_stage,
            "to_stage": stage,
            "round": draft.round,
            "reason": reason,
        },
    )
    scope.outbox.send_text(
        [draft.submitter_userid],
        f"{views.draft_label(draft)}在{from_name}被{scope.name_of(scope.user)}退回{to_name}重新审核。理由：{reason}",
    )
    return Done(
        draft,
        f"已把{views.draft_label(draft)}退回{to_name}，由{views.names(assignees, staff_names(scope))}重新审核。",
    )


# ---------------------------------------------------------------- 抄送


async def copy_to(scope: Scope, number: int, userids: Sequence[str]) -> Done:
    """抄送: the people are told now and again when the draft is approved."""
    targets = [require_staff_userid(scope, u) for u in dict.fromkeys(userids)]
    draft = await load_draft(scope, number)
    involved = draft.submitter_userid == scope.user or is_admin(scope)
    if not involved and draft.status == "in_review":
        chain = scope.settings.chain_for(draft.category, draft.important)
        people = await stage_people(scope, chain, draft, await current_decisions(scope, draft))
        involved = scope.user in people.assignees
    if not involved:
        raise UserFacingError(f"只有投稿人、当前审核人或管理员可以抄送{views.draft_label(draft)}。")
    now = scope.now()
    assert draft.id is not None
    added = [
        u
        for u in targets
        if await drafts_repo.add_watcher(
            session=scope.session, draft_id=draft.id, userid=u, by=scope.user, at=now
        )
    ]
    if not added:
        raise UserFacingError("这些人已在抄送名单中。")
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="cc",
        draft_id=draft.id,
        details={"to": added},
    )
    scope.outbox.send_text(added, views.copied_notice(draft, scope.name_of(scope.user)))
    return Done(draft, f"已抄送{views.draft_label(draft)}给{views.names(added, staff_names(scope))}。")


# ---------------------------------------------------------------- 催办


async def remind(scope: Scope, number: int) -> Done:
    """The submitter (or an admin) nudges the current stage's reviewers, at most once an interval."""
    draft = await in_review(scope, number)
    if draft.submitter_userid != scope.user and not is_admin(scope):
        raise UserFacingError(f"只有投稿人或管理员可以催办{views.draft_label(draft)}。")
    now = scope.now()
    interval = timedelta(minutes=scope.settings.review.remind_interval_minutes)
    last = (
        await scope.session.exec(
            select(AuditEntry.at)
            .where(AuditEntry.draft_id == draft.id, AuditEntry.action == "remind")
            .order_by(col(AuditEntry.id).desc())
            .limit(1)
        )
    ).first()
    if last is not None and now - last < interval:
        wait = int((last + interval - now).total_seconds() // 60) + 1
        raise UserFacingError(f"刚刚已催办过，请 {wait} 分钟后再试。")
    stage_name, waiting = await waiting_on(scope, draft)  # reviewers, or proofreaders in a 校 step
    waited = views.local(draft.stage_entered_at, scope.settings.tz)
    how = (
        f"请在校对卡片上签署，或发送 /proof {draft.id} 无误"
        if draft.step == "proof"
        else f"请在审核卡片上处理，或发送 /approve {draft.id}、/reject {draft.id} 理由"
    )
    scope.outbox.send_text(
        list(waiting),
        f"【催办】{scope.name_of(scope.user)}提醒：{views.draft_label(draft)}自 {waited} 起等待您{stage_name}，{how}。",
    )
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="remind",
        draft_id=draft.id,
        details={"stage": draft.stage, "to": list(waiting)},
    )
    return Done(
        draft,
        f"已提醒{views.names(waiting, staff_names(scope))}处理{views.draft_label(draft)}的{stage_name}。",
    )


# ---------------------------------------------------------------- 代理


async def current_delegation(scope: Scope) -> Delegation | None:
    """The person acting's away period, if one is running now."""
    current = await scope.session.get(Delegation, scope.user)
    return current if current is not None and current.until > scope.now() else None


async def set_away(scope: Scope, delegate: str, last_day: date) -> Away:
    """Away through `last_day` (local): `delegate` stands in and gets the stages waiting now."""
    require_staff_userid(scope, delegate)
    if delegate == scope.user:
        raise UserFacingError("代理人不能是您自己。")
    needed = signing_roles(scope.staff.get(scope.user), scope.settings.chains)
    lacking = [r for r in needed if r not in scope.staff[delegate].roles]
    if lacking:
        scope.log.info("away delegate %s for %s refused: lacks %s", delegate, scope.user, lacking)
        raise UserFacingError(views.not_eligible_delegate(scope.name_of(delegate), lacking))
    now = scope.now()
    today = now.astimezone(scope.settings.tz).date()
    if last_day < today or last_day > today + timedelta(days=MAX_AWAY_DAYS):
        raise UserFacingError(f"结束日期须在今天到 {MAX_AWAY_DAYS} 天以内。")
    until = datetime.combine(last_day + timedelta(days=1), time(0), scope.settings.tz)
    current = await scope.session.get(Delegation, scope.user)
    if current is None:
        scope.session.add(Delegation(userid=scope.user, delegate=delegate, until=until, created_at=now))
    else:
        current.delegate, current.until, current.created_at = delegate, until, now
        scope.session.add(current)
    await scope.session.flush()
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="away",
        details={"delegate": delegate, "until": until.isoformat()},
    )
    handed = await hand_over_pending(scope, delegate)
    scope.outbox.send_text(
        [delegate],
        f"{scope.name_of(scope.user)}外出至 {last_day:%Y-%m-%d}，期间其审核工作由您代理"
        f"（记录中会同时写明您和{scope.name_of(scope.user)}）。"
        + (f"已转来 {handed} 件待审稿件。" if handed else ""),
    )
    return Away(
        delegate,
        handed,
        f"已设置：外出至 {last_day:%Y-%m-%d}，由{scope.name_of(delegate)}代理审核。"
        + (f"您手上 {handed} 件待审稿件已转给代理人。" if handed else "")
        + "提前回来请发送 /away 取消。",
    )


async def cancel_away(scope: Scope) -> Away:
    """Back early: new stage work goes to the person again, and the delegate is told."""
    current = await current_delegation(scope)
    if current is None:
        raise UserFacingError("您当前没有设置代理。")
    await scope.session.delete(current)
    await append_audit(session=scope.session, at=scope.now(), actor=scope.user, action="away_end", details={})
    scope.outbox.send_text([current.delegate], f"{scope.name_of(scope.user)}已结束外出，不再需要您代理审核。")
    return Away(current.delegate, 0, "已取消代理，新的审核工作将直接发给您。")


async def hand_over_pending(scope: Scope, delegate: str) -> int:
    """Send the delegate a card for every stage now waiting on the person acting."""
    rows = await scope.session.exec(select(Draft).where(Draft.status == "in_review").order_by(col(Draft.id)))
    handed = 0
    for draft in rows.all():
        if draft.step == "proof":  # 校 steps are signed by role, not handed to a delegate
            continue
        chain = scope.settings.chain_for(draft.category, draft.important)
        decisions = await current_decisions(scope, draft)
        people = await stage_people(scope, chain, draft, decisions)
        if people.on_behalf.get(delegate) == scope.user:
            await start_stage(scope, draft, decisions, only=(delegate,))
            handed += 1
    return handed
