"""发布后复核 (湛江 细则 三(三)2: 发布后第一时间再次审核): the re-check each /published opens, its
card, and the outcome (无误, or a problem reported to the people who must act on it)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, select

from bot import views
from bot.core.errors import UserFacingError, refuse_if_longer
from bot.rules.calendar import add_working_time, people_with_role
from bot.services.scope import Scope, is_admin
from storage.account_models import AccountPost, Recheck
from storage.audit_repo import append_audit
from storage.models import Draft, StageDecision

MAX_NOTE = 500  # Recheck.note


@dataclass(frozen=True)
class RecheckDone:
    """The re-check a service acted on, and what the person who acted is told."""

    recheck: Recheck
    message: str


def recheck_subject(recheck: Recheck) -> str:
    """The CardHandle subject of a re-check's cards (one per assignee)."""
    return f"recheck:{recheck.id}"


async def recheckers(scope: Scope, draft: Draft) -> list[str]:
    """Who re-checks `draft`'s published version: the people who decided the configured stage of
    it (in its last round), or everyone with the configured role; the admins when there are none."""
    kind, _, what = scope.settings.review.recheck_by.partition(":")
    people: list[str] = []
    if kind == "stage":
        rows = await scope.session.exec(
            select(StageDecision.reviewer_userid, StageDecision.stage, StageDecision.round)
            .where(
                StageDecision.draft_id == draft.id,
                StageDecision.version == draft.version,
                StageDecision.decision == "approve",
            )
            .order_by(col(StageDecision.round).desc(), col(StageDecision.id))
        )
        decisions = rows.all()
        last_round = decisions[0][2] if decisions else 0
        stages = sorted({stage for _, stage, round_ in decisions if round_ == last_round})
        if stages:  # the configured stage, or the last one when the chain is shorter
            wanted = int(what) if int(what) in stages else stages[-1]
            people = [user for user, stage, round_ in decisions if round_ == last_round and stage == wanted]
    else:
        people = people_with_role(scope.settings, what)
    return list(dict.fromkeys(people)) or people_with_role(scope.settings, "admin")


async def open_recheck(scope: Scope, draft: Draft, post: AccountPost, account: str) -> Recheck:
    """A re-check of `draft` as it went out on `account` (`post`), its cards sent to the
    rechecker(s), due recheck_within_hours of working-day time from now."""
    assert draft.id is not None and post.id is not None
    now = scope.now()
    settings = scope.settings
    due = add_working_time(
        now, timedelta(hours=settings.review.recheck_within_hours), settings.tz, settings.calendar
    )
    recheck = Recheck(
        post_id=post.id,
        draft_id=draft.id,
        version=draft.version,
        account=account,
        url=post.url,
        assignees="|".join(await recheckers(scope, draft)),
        task_id=f"sanshen-rc-{draft.id}-{secrets.token_hex(4)}",
        created_at=now,
        due_at=due,
    )
    scope.session.add(recheck)
    await scope.session.flush()
    for person in recheck.assignee_list:
        card = views.recheck_card(recheck, draft, settings.tz, f"{recheck.task_id}-{person}"[:128])
        scope.outbox.send_card([person], card, subject=recheck_subject(recheck))
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="recheck_open",
        draft_id=draft.id,
        details={
            "recheck": recheck.id,
            "account": account,
            "url": post.url,
            "assignees": recheck.assignee_list,
            "due": due.isoformat(),
        },
    )
    return recheck


async def decide_recheck(
    scope: Scope,
    number: int,
    outcome: str,
    note: str = "",
    *,
    task_id: str | None = None,
    response_code: str = "",
) -> RecheckDone:
    """无误 ("ok") or a problem ("problem", with what is wrong) by an assignee or an admin."""
    recheck = await scope.session.get(Recheck, number, with_for_update=True)
    if recheck is None or (task_id is not None and not task_id.startswith(recheck.task_id)):
        raise UserFacingError(views.UNKNOWN_CARD if task_id is not None else f"没有{number}号复核任务。")
    draft = await scope.session.get(Draft, recheck.draft_id)
    assert draft is not None and recheck.id is not None
    label = f"{views.draft_label(draft)}在“{recheck.account}”"
    if recheck.done_at is not None:
        raise UserFacingError(
            f"{label}的发布后复核已由{scope.name_of(recheck.done_by)}完成（{views.RECHECK_OUTCOMES[recheck.outcome]}），"
            "本次操作未生效。"
        )
    if scope.user not in recheck.assignee_list and not is_admin(scope):
        scope.log.info("recheck %s by %s refused: not an assignee", recheck.id, scope.user)
        raise UserFacingError(
            f"{label}的发布后复核由{views.names(recheck.assignee_list, scope.settings.staff_names)}负责，本次操作未生效。"
        )
    if outcome == "problem":
        note = note.strip()
        if not note:
            raise UserFacingError(
                f"请写明发现的问题：/recheck {recheck.id} 问题 说明（如：第二段数据有误）。"
            )
        refuse_if_longer(note, MAX_NOTE, "问题说明")
    now = scope.now()
    recheck.done_at, recheck.done_by, recheck.outcome, recheck.note = now, scope.user, outcome, note
    scope.session.add(recheck)
    done_label = f"{views.RECHECK_OUTCOMES[outcome]}·{scope.name_of(scope.user)}"[:20]
    if response_code:
        scope.outbox.update_card(response_code, replace_name=done_label)
    await scope.outbox.close_cards(recheck_subject(recheck), replace_name=done_label, keep=task_id or "")
    late = now > recheck.due_at
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action=f"recheck_{outcome}",
        draft_id=draft.id,
        details={"recheck": recheck.id, "account": recheck.account, "note": note, "late": late},
    )
    if outcome == "problem":
        told = [draft.submitter_userid, *people_with_role(scope.settings, "admin")]
        post = await scope.session.get(AccountPost, recheck.post_id)
        if post is not None:
            told.append(post.recorded_by)
        told = [u for u in dict.fromkeys(told) if u != scope.user]
        scope.outbox.send_text(told, views.recheck_problem_text(recheck, draft, scope.name_of(scope.user)))
        return RecheckDone(
            recheck,
            f"已记录：{label}发布后复核发现问题（{note}），已告知投稿人、发布人和管理员，请尽快纠错。",
        )
    return RecheckDone(recheck, f"已记录：{label}发布后复核无误{'（已超时）' if late else ''}。")


async def my_rechecks(scope: Scope, draft_id: int | None = None) -> list[Recheck]:
    """Open re-checks of the person asking (every open one for an admin), the oldest due first;
    only `draft_id`'s when given."""
    statement = select(Recheck).where(col(Recheck.done_at).is_(None)).order_by(col(Recheck.due_at))
    if draft_id is not None:
        statement = statement.where(Recheck.draft_id == draft_id)
    rows = (await scope.session.exec(statement)).all()
    return [r for r in rows if scope.user in r.assignee_list or is_admin(scope)]
