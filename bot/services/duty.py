"""The duty-watch service: who is on duty, paging and answering incidents, 巡检, and 调班 (chat, scheduler, pages)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import views
from bot.core.config import INCIDENT_KIND_LABELS, INCIDENT_STATUS_LABELS, ReportTarget, Settings
from bot.core.errors import UserFacingError
from bot.rules.calendar import fmt_local, local_at, people_with_role
from bot.services.review import staff_names
from bot.services.scope import Scope, is_admin
from bot.views import incident_card
from bot.wecom.dispatcher import pack_action
from bot.wecom.outbox import Outbox
from storage import duty_repo
from storage.audit_repo import append_audit
from storage.duty_models import Incident, IncidentEvent, Inspection, Shift

INCIDENT_STEPS = ("上报", "纠错", "删除", "回应", "处置", "总结")


@dataclass(frozen=True)
class IncidentDone:
    """The incident a service raised or answered, and what the person who acted is told."""

    incident: Incident
    message: str


@dataclass(frozen=True)
class InspectionDone:
    """The 巡检 just marked done, and what the person who acted is told."""

    inspection: Inspection
    message: str


@dataclass(frozen=True)
class SwapDone:
    """A 调班: whether the shift changed hands now (not only asked or declined), and what the
    person who acted is told."""

    applied: bool
    message: str


def incident_subject(incident: Incident) -> str:
    """The CardHandle subject of an incident's page cards."""
    return f"incident:{incident.id}"


async def on_duty_userids(session: AsyncSession, at: datetime, roles: tuple[str, ...]) -> list[str]:
    shifts = await duty_repo.on_duty_at(session, at)
    return list(dict.fromkeys(s.userid for s in shifts if s.role in roles))


async def page_incident(
    ctx_now: datetime,
    session: AsyncSession,
    outbox: Outbox,
    incident: Incident,
    settings: Settings,
    names: dict[str, str],
    *,
    instance: str = "",
) -> list[str]:
    """Send the incident card to whoever is on duty now (admins when nobody is)."""
    on_duty = await on_duty_userids(session, ctx_now, ("primary", "deputy"))
    targets = on_duty or people_with_role(settings, "admin")
    assert incident.id is not None
    task_id = f"sanshen-inc{incident.id}-{secrets.token_hex(5)}"
    incident.task_id = task_id
    session.add(incident)
    tz = settings.tz
    outbox.send_card(
        targets,
        incident_card(incident, names.get(incident.raised_by, incident.raised_by), tz, task_id),
        subject=incident_subject(incident),
    )
    session.add(
        IncidentEvent(
            incident_id=incident.id, at=ctx_now, kind="paged", actor=instance, details={"to": targets}
        )
    )
    return targets


async def duty_ids(scope: Scope) -> list[str]:
    """Everyone on a shift now, any role."""
    return [s.userid for s in await duty_repo.on_duty_at(scope.session, scope.now())]


# ---------------------------------------------------------------- incidents


async def raise_incident(scope: Scope, content: str, kind: str = "other") -> IncidentDone:
    """A new incident, paged at once to whoever is on duty (admins when nobody is); the 上报
    chain's people in WeCom are told at once, the others wait to be reported to by hand."""
    now = scope.now()
    incident = Incident(
        content=content[:2000],
        raised_by=scope.user,
        raised_at=now,
        status="open",
        kind=kind,
        next_page_at=now + timedelta(minutes=scope.settings.duty.incident_repeat_minutes),
    )
    scope.session.add(incident)
    await scope.session.flush()
    assert incident.id is not None
    scope.session.add(IncidentEvent(incident_id=incident.id, at=now, kind="raised", actor=scope.user))
    names = staff_names(scope)
    paged = await page_incident(now, scope.session, scope.outbox, incident, scope.settings, names)
    told = []
    for target in report_targets(scope.settings, kind):
        if target.userid:
            scope.outbox.send_text(
                [target.userid],
                views.incident_report_text(incident, scope.name_of(scope.user), INCIDENT_KIND_LABELS[kind]),
            )
            scope.session.add(
                IncidentEvent(
                    incident_id=incident.id,
                    at=now,
                    kind="reported",
                    actor="system",
                    details={"to": target.name, "how": "企业微信"},
                )
            )
            told.append(target.name)
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="incident",
        details={
            "incident": incident.id,
            "kind": kind,
            "content": content[:200],
            "paged": paged,
            "reported": told,
        },
    )
    pending = [t.name for t in report_targets(scope.settings, kind) if not t.userid]
    return IncidentDone(
        incident,
        f"已报告突发事件{incident.id}号（{INCIDENT_KIND_LABELS[kind]}），已通知{views.names(paged, names)}"
        + (f"，已上报{'、'.join(told)}" if told else "")
        + "。"
        f"{scope.settings.duty.incident_escalate_minutes} 分钟内无人确认将上报单位领导。"
        + (
            f"还须上报：{'、'.join(pending)}（上报后发送 /incidents {incident.id} 上报 对象 方式）。"
            if pending
            else ""
        ),
    )


def report_targets(settings: Settings, kind: str) -> list[ReportTarget]:
    """The 上报 chain for an incident of `kind`."""
    return [t for t in settings.duty.report_to if not t.kinds or kind in t.kinds]


async def may_handle_incident(scope: Scope, incident: Incident) -> bool:
    """Who may record what was done about an incident: whoever is on duty, acknowledged it or
    raised it, leaders and admins."""
    member = scope.staff.get(scope.user)
    return (
        is_admin(scope)
        or scope.user in (incident.raised_by, incident.acked_by)
        or (member is not None and bool({"leader", "principal"} & set(member.roles)))
        or scope.user in await duty_ids(scope)
    )


async def record_incident_step(scope: Scope, number: int, step: str, words: list[str]) -> IncidentDone:
    """上报 (to whom, how, what was said), an action taken (纠错, 删除, 回应, 处置) or the closing 总结."""
    incident = await load_incident(scope, number)
    assert incident.id is not None
    if not await may_handle_incident(scope, incident):
        scope.log.info("incident %s step by %s refused", incident.id, scope.user)
        raise UserFacingError("只有值班人员、事件的报告人和确认人、领导和管理员可以登记事件的处置情况。")
    if incident.summary:
        raise UserFacingError(f"事件{incident.id}号已总结结案，不能再登记。")
    now = scope.now()
    note = " ".join(words).strip()
    if step == "上报":
        if len(words) < 2:
            raise UserFacingError(
                f"请写明上报对象和方式：/incidents {incident.id} 上报 对象 方式（电话、书面、短信、当面…） [说明]"
            )
        to, how, note = words[0], words[1], " ".join(words[2:])
        event = IncidentEvent(
            incident_id=incident.id,
            at=now,
            kind="reported",
            actor=scope.user,
            details={"to": to[:50], "how": how[:20], "note": note[:500]},
        )
        message = f"已记录：事件{incident.id}号已由{scope.name_of(scope.user)}以{how}上报{to}。"
    elif step == "总结":
        if not note:
            raise UserFacingError(f"请写明处置结果：/incidents {incident.id} 总结 说明")
        incident.summary = note[:2000]
        if incident.status != "resolved":
            if incident.status == "open":
                incident.acked_by, incident.acked_at = scope.user, now
            incident.status, incident.resolved_by, incident.resolved_at = "resolved", scope.user, now
            incident.next_page_at = None
            await scope.outbox.close_cards(incident_subject(incident), replace_name="已结案")
        scope.session.add(incident)
        event = IncidentEvent(
            incident_id=incident.id, at=now, kind="summary", actor=scope.user, details={"note": note[:500]}
        )
        message = f"已记录：事件{incident.id}号已总结结案。"
    else:
        if not note:
            raise UserFacingError(f"请写明{step}的情况：/incidents {incident.id} {step} 说明")
        event = IncidentEvent(
            incident_id=incident.id,
            at=now,
            kind="action",
            actor=scope.user,
            details={"action": step, "note": note[:500]},
        )
        message = f"已记录：事件{incident.id}号{step}：{note[:500]}。"
    scope.session.add(event)
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action=f"incident_{event.kind}",
        details={"incident": incident.id, **event.details},
    )
    return IncidentDone(incident, message)


async def load_incident(scope: Scope, number: int) -> Incident:
    incident = await scope.session.get(Incident, number, with_for_update=True)
    if incident is None:
        raise UserFacingError(f"没有编号为 {number} 的突发事件。")
    return incident


async def answer_incident(
    scope: Scope, number: int, *, resolve: bool, task_id: str = "", response_code: str = ""
) -> IncidentDone:
    """收到 (or 已处置 when `resolve`) by someone on duty, a leader or an admin; paging stops and
    every page card but the answered one (`task_id`, updated through `response_code`) greys out."""
    incident = await load_incident(scope, number)
    now = scope.now()
    allowed = (
        set(await duty_ids(scope))
        | set(people_with_role(scope.settings, "leader"))
        | set(people_with_role(scope.settings, "admin"))
    )
    if scope.user not in allowed:
        scope.log.info("incident %s click by %s refused", incident.id, scope.user)
        raise UserFacingError("您不是当前值班人员，不能处理该事件，本次操作未生效。")
    if incident.status == "resolved" or (not resolve and incident.status != "open"):
        who = incident.resolved_by or incident.acked_by
        raise UserFacingError(
            f"事件{incident.id}号已由{scope.name_of(who)}处理（{INCIDENT_STATUS_LABELS[incident.status]}），本次操作未生效。"
        )
    assert incident.id is not None
    if not resolve:
        incident.status, incident.acked_by, incident.acked_at = "acked", scope.user, now
        label, kind = f"已收到·{scope.name_of(scope.user)}", "acked"
    else:
        if incident.status == "open":
            incident.acked_by, incident.acked_at = scope.user, now
        incident.status, incident.resolved_by, incident.resolved_at = "resolved", scope.user, now
        label, kind = f"已处置·{scope.name_of(scope.user)}", "resolved"
    incident.next_page_at = None
    scope.session.add(incident)
    scope.session.add(IncidentEvent(incident_id=incident.id, at=now, kind=kind, actor=scope.user))
    # The clicked card keeps only 已处置 after 收到 (greyed after 已处置); every other page of
    # this incident is greyed for all its holders, so nobody acts on a stale page.
    if response_code:
        if kind == "acked":
            raiser = scope.name_of(incident.raised_by)
            scope.outbox.update_card(
                response_code,
                card=views.incident_handling_card(
                    incident, raiser, scope.settings.tz, task_id, scope.name_of(scope.user)
                ),
            )
        else:
            scope.outbox.update_card(response_code, replace_name=label[:20])
    await scope.outbox.close_cards(incident_subject(incident), replace_name=label[:20], keep=task_id)
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action=f"incident_{kind}",
        details={"incident": incident.id},
    )
    verb = "已确认收到" if kind == "acked" else "已处置完毕"
    if incident.raised_by != scope.user:
        scope.outbox.send_text(
            [incident.raised_by], f"您报告的突发事件{incident.id}号{scope.name_of(scope.user)}{verb}。"
        )
    return IncidentDone(
        incident,
        f"已记录：事件{incident.id}号{verb}。" + ("处置完毕后请点“已处置”。" if kind == "acked" else ""),
    )


# ---------------------------------------------------------------- 巡检


async def complete_inspection(
    scope: Scope, number: int, *, task_id: str | None = None, response_code: str = ""
) -> InspectionDone:
    """日常巡检 done, by its assignee, whoever is on duty or an admin. A card's `task_id` must match."""
    inspection = await scope.session.get(Inspection, number, with_for_update=True)
    if inspection is None or (task_id is not None and inspection.task_id != task_id):
        raise UserFacingError(views.UNKNOWN_CARD)
    if inspection.done_at is not None:
        raise UserFacingError(
            f"{inspection.day} 的巡检已由{scope.name_of(inspection.done_by)}完成，本次操作未生效。"
        )
    if scope.user != inspection.userid and scope.user not in await duty_ids(scope) and not is_admin(scope):
        raise UserFacingError("您不是今日巡检的值班人员，本次操作未生效。")
    now = scope.now()
    inspection.done_at, inspection.done_by = now, scope.user
    scope.session.add(inspection)
    if response_code:
        scope.outbox.update_card(response_code, replace_name=f"已完成·{scope.name_of(scope.user)}"[:20])
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="inspection_done",
        details={"day": inspection.day, "late": now > inspection.due_at},
    )
    late = "（已超时）" if now > inspection.due_at else ""
    return InspectionDone(inspection, f"已记录：{inspection.day} 日常巡检完成{late}。")


# ---------------------------------------------------------------- 调班


async def swap_shift(scope: Scope, day: date, role: str, target: str) -> SwapDone:
    """Give `day`'s shift in `role` to `target`, or ask its holder to (a card) when `target` asks."""
    if target not in scope.staff:
        raise UserFacingError(f"人员名单中没有 {target}，请核对 userid。")
    start, current = await shift_holder(scope, day, role)
    if current == target:
        raise UserFacingError(f"{day:%m月%d日}的{duty_repo.ROLE_LABELS[role]}已是{scope.name_of(target)}。")
    # The two people concerned: the holder hands the shift over at once; the person taking it
    # over asks the holder, whose 同意 on a card makes it so. An admin assigns anyone, and a
    # vacant shift may be taken by the person who will stand it.
    if is_admin(scope) or scope.user == current or (not current and scope.user == target):
        await apply_swap(scope, day, role, start, current, target)
        return SwapDone(
            True, f"已调班：{swap_label(scope, day, role, start)}改由{scope.name_of(target)}值班。"
        )
    if scope.user != target:
        raise UserFacingError("只有管理员、该班次的值班人或接班人本人可以调班，本次操作未生效。")
    label = swap_label(scope, day, role, start)
    task_id = f"sanshen-swap-{secrets.token_hex(6)}"
    keys = [pack_action("sw", verdict, day.isoformat(), role, target, current) for verdict in ("ok", "no")]
    scope.outbox.send_card(
        [current],
        subject=swap_subject(day, role),
        card={
            "card_type": "button_interaction",
            "source": {"desc": "审校助手·值班值守", "desc_color": 0},
            "main_title": {"title": "【调班申请】", "desc": f"{scope.name_of(target)} 申请接班"},
            "sub_title_text": f"{scope.name_of(target)}申请接替您{label}。同意后由{scope.name_of(target)}值班。",
            "task_id": task_id,
            "button_list": [
                {"text": "同意", "style": 1, "key": keys[0]},
                {"text": "不同意", "style": 2, "key": keys[1]},
            ],
        },
    )
    await append_audit(
        session=scope.session,
        at=scope.now(),
        actor=scope.user,
        action="duty_swap_request",
        details=swap_details(day, role, current, target),
    )
    return SwapDone(False, f"已向{scope.name_of(current)}发出调班申请（{label}），对方同意后生效。")


async def answer_swap(
    scope: Scope,
    day: date,
    role: str,
    target: str,
    holder: str,
    *,
    agree: bool,
    task_id: str = "",
    response_code: str = "",
) -> SwapDone:
    """The holder's 同意 or 不同意 to `target`'s request; a stale request (the shift ended or
    changed hands) refuses."""
    if scope.user != holder:
        scope.log.info("swap click by %s on %s's request refused", scope.user, holder)
        raise UserFacingError("只有该班次的值班人可以答复这个调班申请，本次操作未生效。")
    try:
        start, current = await shift_holder(scope, day, role)
    except UserFacingError:
        raise UserFacingError("该班次已结束，调班申请已失效。") from None
    if current != holder:
        raise UserFacingError(
            f"该班次现由{scope.name_of(current) if current else '（空缺）'}值班，调班申请已失效，本次操作未生效。"
        )
    label = swap_label(scope, day, role, start)
    if agree:
        await apply_swap(
            scope, day, role, start, current, target, agreed_by=scope.user, answered_task=task_id
        )
        done = SwapDone(True, f"已同意调班：{label}改由{scope.name_of(target)}值班。")
    else:
        await append_audit(
            session=scope.session,
            at=scope.now(),
            actor=scope.user,
            action="duty_swap_declined",
            details=swap_details(day, role, current, target),
        )
        scope.outbox.send_text([target], f"【调班】{scope.name_of(scope.user)}未同意您接替{label}。")
        done = SwapDone(False, f"已答复：不同意{scope.name_of(target)}接替{label}。")
    if response_code:
        scope.outbox.update_card(response_code, replace_name="已同意" if agree else "未同意")
    return done


async def shift_holder(scope: Scope, day: date, role: str) -> tuple[datetime, str]:
    """The start of `day`'s shift in `role` and who holds it ("" when vacant); past shifts refuse."""
    start = local_at(day, scope.settings.duty.handover_time, scope.settings.tz)
    if start + timedelta(hours=scope.settings.duty.shift_hours) <= scope.now():
        raise UserFacingError("只能调整当前或以后的班次。")
    shift = (
        await scope.session.exec(select(Shift).where(Shift.role == role, Shift.start_at == start))
    ).first()
    return start, shift.userid if shift else ""


def swap_subject(day: date, role: str) -> str:
    """The CardHandle subject of the 调班申请 cards for one shift."""
    return f"swap:{day.isoformat()}:{role}"


def swap_details(day: date, role: str, current: str, target: str) -> dict[str, str]:
    """What the audit log records of a swap, a request or a refusal."""
    return {"day": day.isoformat(), "role": role, "from": current, "to": target}


def swap_label(scope: Scope, day: date, role: str, start: datetime) -> str:
    return f"{day:%m月%d日}（{fmt_local(start, scope.settings.tz)} 起）的{duty_repo.ROLE_LABELS[role]}"


async def apply_swap(
    scope: Scope,
    day: date,
    role: str,
    start: datetime,
    current: str,
    target: str,
    *,
    agreed_by: str = "",
    answered_task: str = "",
) -> None:
    """Give the shift to `target`, record it, tell whichever of the two did not act, and grey
    the shift's other open 调班申请 cards (all but `answered_task`, the one just answered)."""
    await scope.outbox.close_cards(swap_subject(day, role), replace_name="已另行调班", keep=answered_task)
    await duty_repo.upsert_shift(
        scope.session,
        duty_repo.PlannedShift(
            role, target, start, start + timedelta(hours=scope.settings.duty.shift_hours), "swap"
        ),
    )
    details = swap_details(day, role, current, target)
    if agreed_by:
        details["agreed_by"] = agreed_by
    await append_audit(
        session=scope.session, at=scope.now(), actor=scope.user, action="duty_swap", details=details
    )
    label = swap_label(scope, day, role, start)
    told = [u for u in (current, target) if u and u != scope.user]
    if told:
        before = scope.name_of(current) if current else "（空缺）"
        scope.outbox.send_text(
            told, f"【调班】{scope.name_of(scope.user)}已把{label}由{before}改为{scope.name_of(target)}。"
        )
