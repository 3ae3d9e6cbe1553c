"""Duty-watch commands and cards: /duty (值班), /duty swap, /alert (突发), /incidents, 巡检 and 事件 buttons."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from sqlmodel import col, select

from bot import views
from bot.core.errors import UserFacingError
from bot.rules.calendar import fmt_local, local_at, local_day, people_with_role
from bot.services.duty import incident_subject, page_incident
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router, pack_action
from bot.wecom.events import CardClick
from storage import duty_repo
from storage.audit_repo import append_audit
from storage.duty_models import Incident, IncidentEvent, Inspection, Shift

router = Router("duty")

DUTY_USAGE = "/duty [天数] 或 /duty swap YYYY-MM-DD userid [副班|带班领导]"
ALERT_USAGE = "/alert 事件内容"
INCIDENT_USAGE = "/incidents [编号]"
STATUS_LABELS = {"open": "待收到", "acked": "已收到，处置中", "resolved": "已处置"}
EVENT_LABELS = {"raised": "报告", "paged": "通知值班", "escalated": "上报", "acked": "收到", "resolved": "处置完毕"}
ROLE_WORDS = {"主班": "primary", "副班": "deputy", "带班领导": "leader", "带班": "leader"}


def is_admin(ctx: Context) -> bool:
    return ctx.member is not None and "admin" in ctx.member.roles


# ---------------------------------------------------------------- /duty


@router.command("duty", aliases=("值班",), usage=DUTY_USAGE, summary="值班表；调班：/duty swap 日期 userid")
async def on_duty(ctx: Context, cmd: Command) -> None:
    if cmd.argv and cmd.argv[0] in ("swap", "调班", "换班"):
        await swap(ctx, cmd.argv[1:])
        return
    days = 7
    if cmd.argv:
        if len(cmd.argv) != 1 or not cmd.argv[0].isdigit() or not 1 <= int(cmd.argv[0]) <= 31:
            raise UserFacingError(views.usage(DUTY_USAGE))
        days = int(cmd.argv[0])
    tz = ctx.settings.tz
    now = ctx.now()
    today = local_day(now, tz)
    start = local_at(today, ctx.settings.duty.handover_time, tz) - timedelta(days=1)
    shifts = await duty_repo.shifts_between(ctx.session, max(start, now - timedelta(hours=1)), start + timedelta(days=days + 1))
    if not shifts:
        ctx.reply_text("还没有排班。管理员可在配置的 [duty] 中设置轮值，或导入排班表。")
        return
    lines = ["【值班表】"]
    for shift_start in sorted({s.start_at for s in shifts}):
        group = [s for s in shifts if s.start_at == shift_start]
        who = "，".join(f"{duty_repo.ROLE_LABELS.get(s.role, s.role)} {ctx.name_of(s.userid)}" for s in sorted(group, key=lambda s: duty_repo.ROLES.index(s.role)))
        marker = "（当前）" if group[0].start_at <= now < group[0].end_at else ""
        lines.append(f"{fmt_local(shift_start, tz, '%m-%d %a %H:%M')}{marker}：{who}")
    on_now = await duty_repo.on_duty_at(ctx.session, now)
    if not [s for s in on_now if s.role == "primary"]:
        lines.append("注意：当前无人值班（主班）。")
    ctx.reply_text("\n".join(lines))


async def swap(ctx: Context, args: list[str]) -> None:
    if len(args) not in (2, 3):
        raise UserFacingError(views.usage(DUTY_USAGE))
    try:
        day = date.fromisoformat(args[0])
    except ValueError:
        raise UserFacingError(f"日期“{args[0]}”应写成 YYYY-MM-DD。用法：{DUTY_USAGE}") from None
    target = args[1]
    if target not in ctx.staff:
        raise UserFacingError(f"人员名单中没有 {target}，请核对 userid。")
    role = ROLE_WORDS.get(args[2], "") if len(args) == 3 else "primary"
    if not role:
        raise UserFacingError(views.usage(DUTY_USAGE))
    start, current = await shift_holder(ctx, day, role)
    if current == target:
        raise UserFacingError(f"{day:%m月%d日}的{duty_repo.ROLE_LABELS[role]}已是{ctx.name_of(target)}。")
    # The two people concerned: the holder hands the shift over at once; the person taking it
    # over asks the holder, whose 同意 on a card makes it so. An admin assigns anyone, and a
    # vacant shift may be taken by the person who will stand it.
    if is_admin(ctx) or ctx.user == current or (not current and ctx.user == target):
        await apply_swap(ctx, day, role, start, current, target)
        ctx.reply_text(f"已调班：{swap_label(ctx, day, role, start)}改由{ctx.name_of(target)}值班。")
        return
    if ctx.user != target:
        raise UserFacingError("只有管理员、该班次的值班人或接班人本人可以调班，本次操作未生效。")
    label = swap_label(ctx, day, role, start)
    task_id = f"sanshen-swap-{secrets.token_hex(6)}"
    keys = [pack_action("sw", verdict, day.isoformat(), role, target, current) for verdict in ("ok", "no")]
    ctx.outbox.send_card([current], subject=swap_subject(day, role), card={
        "card_type": "button_interaction",
        "source": {"desc": "审校助手·值班值守", "desc_color": 0},
        "main_title": {"title": "【调班申请】", "desc": f"{ctx.name_of(target)} 申请接班"},
        "sub_title_text": f"{ctx.name_of(target)}申请接替您{label}。同意后由{ctx.name_of(target)}值班。",
        "task_id": task_id,
        "button_list": [
            {"text": "同意", "style": 1, "key": keys[0]},
            {"text": "不同意", "style": 2, "key": keys[1]},
        ],
    })
    await append_audit(session=ctx.session, at=ctx.now(), actor=ctx.user, action="duty_swap_request",
                       details=swap_details(day, role, current, target))
    ctx.reply_text(f"已向{ctx.name_of(current)}发出调班申请（{label}），对方同意后生效。")


async def shift_holder(ctx: Context, day: date, role: str) -> tuple[datetime, str]:
    """The start of `day`'s shift in `role` and who holds it ("" when vacant); past shifts refuse."""
    start = local_at(day, ctx.settings.duty.handover_time, ctx.settings.tz)
    if start + timedelta(hours=ctx.settings.duty.shift_hours) <= ctx.now():
        raise UserFacingError("只能调整当前或以后的班次。")
    shift = (await ctx.session.exec(select(Shift).where(Shift.role == role, Shift.start_at == start))).first()
    return start, shift.userid if shift else ""


def swap_subject(day: date, role: str) -> str:
    """The CardHandle subject of the 调班申请 cards for one shift."""
    return f"swap:{day.isoformat()}:{role}"


def swap_details(day: date, role: str, current: str, target: str) -> dict[str, str]:
    """What the audit log records of a swap, a request or a refusal."""
    return {"day": day.isoformat(), "role": role, "from": current, "to": target}


def swap_label(ctx: Context, day: date, role: str, start: datetime) -> str:
    return f"{day:%m月%d日}（{fmt_local(start, ctx.settings.tz)} 起）的{duty_repo.ROLE_LABELS[role]}"


async def apply_swap(ctx: Context, day: date, role: str, start: datetime, current: str, target: str,
                     *, agreed_by: str = "", answered_task: str = "") -> None:
    """Give the shift to `target`, record it, tell whichever of the two did not act, and grey
    the shift's other open 调班申请 cards (all but `answered_task`, the one just answered)."""
    await ctx.outbox.close_cards(swap_subject(day, role), replace_name="已另行调班", keep=answered_task)
    await duty_repo.upsert_shift(
        ctx.session,
        duty_repo.PlannedShift(role, target, start, start + timedelta(hours=ctx.settings.duty.shift_hours), "swap"),
    )
    details = swap_details(day, role, current, target)
    if agreed_by:
        details["agreed_by"] = agreed_by
    await append_audit(session=ctx.session, at=ctx.now(), actor=ctx.user, action="duty_swap", details=details)
    label = swap_label(ctx, day, role, start)
    told = [u for u in (current, target) if u and u != ctx.user]
    if told:
        before = ctx.name_of(current) if current else "（空缺）"
        ctx.outbox.send_text(told, f"【调班】{ctx.name_of(ctx.user)}已把{label}由{before}改为{ctx.name_of(target)}。")


@router.card("sw")
async def on_swap_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    if len(parts) != 5 or parts[0] not in ("ok", "no") or parts[2] not in duty_repo.ROLE_LABELS:
        raise UserFacingError(views.UNKNOWN_CARD)
    verdict, day_text, role, target, holder = parts
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise UserFacingError(views.UNKNOWN_CARD) from None
    if ctx.user != holder:
        ctx.log.info("swap click by %s on %s's request refused", ctx.user, holder)
        raise UserFacingError("只有该班次的值班人可以答复这个调班申请，本次操作未生效。")
    try:
        start, current = await shift_holder(ctx, day, role)
    except UserFacingError:
        raise UserFacingError("该班次已结束，调班申请已失效。") from None
    if current != holder:
        raise UserFacingError(f"该班次现由{ctx.name_of(current) if current else '（空缺）'}值班，调班申请已失效，本次操作未生效。")
    label = swap_label(ctx, day, role, start)
    if verdict == "ok":
        await apply_swap(ctx, day, role, start, current, target, agreed_by=ctx.user, answered_task=click.task_id)
        ctx.reply_text(f"已同意调班：{label}改由{ctx.name_of(target)}值班。")
    else:
        await append_audit(session=ctx.session, at=ctx.now(), actor=ctx.user, action="duty_swap_declined",
                           details=swap_details(day, role, current, target))
        ctx.outbox.send_text([target], f"【调班】{ctx.name_of(ctx.user)}未同意您接替{label}。")
        ctx.reply_text(f"已答复：不同意{ctx.name_of(target)}接替{label}。")
    if click.response_code:
        ctx.outbox.update_card(click.response_code, replace_name="已同意" if verdict == "ok" else "未同意")


# ---------------------------------------------------------------- /alert and incidents


@router.command("alert", aliases=("突发",), usage=ALERT_USAGE, summary="报告突发事件，值班人员立即收到并须确认")
async def on_alert(ctx: Context, cmd: Command) -> None:
    content = " ".join(p for p in (cmd.args.strip(), cmd.body.strip()) if p)
    if not content:
        raise UserFacingError(views.usage(ALERT_USAGE))
    now = ctx.now()
    incident = Incident(
        content=content[:2000], raised_by=ctx.user, raised_at=now, status="open",
        next_page_at=now + timedelta(minutes=ctx.settings.duty.incident_repeat_minutes),
    )
    ctx.session.add(incident)
    await ctx.session.flush()
    assert incident.id is not None
    ctx.session.add(IncidentEvent(incident_id=incident.id, at=now, kind="raised", actor=ctx.user))
    names = {m.userid: m.name for m in ctx.settings.staff}
    paged = await page_incident(now, ctx.session, ctx.outbox, incident, ctx.settings, names)
    await append_audit(session=ctx.session, at=now, actor=ctx.user, action="incident",
                       details={"incident": incident.id, "content": content[:200], "paged": paged})
    ctx.reply_text(
        f"已报告突发事件{incident.id}号，已通知{views.names(paged, names)}。"
        f"{ctx.settings.duty.incident_escalate_minutes} 分钟内无人确认将上报单位领导。"
    )


async def load_incident(ctx: Context, number: int) -> Incident:
    incident = await ctx.session.get(Incident, number, with_for_update=True)
    if incident is None:
        raise UserFacingError(f"没有编号为 {number} 的突发事件。")
    return incident


@router.card("in")
async def on_incident_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    if len(parts) != 2 or parts[0] not in ("ack", "done") or not parts[1].isdigit():
        raise UserFacingError(views.UNKNOWN_CARD)
    incident = await load_incident(ctx, int(parts[1]))
    now = ctx.now()
    allowed = set(await duty_ids(ctx)) | set(people_with_role(ctx.settings, "leader")) | set(people_with_role(ctx.settings, "admin"))
    if ctx.user not in allowed:
        ctx.log.info("incident %s click by %s refused", incident.id, ctx.user)
        raise UserFacingError("您不是当前值班人员，不能处理该事件，本次操作未生效。")
    if incident.status == "resolved" or (parts[0] == "ack" and incident.status != "open"):
        who = incident.resolved_by or incident.acked_by
        raise UserFacingError(f"事件{incident.id}号已由{ctx.name_of(who)}处理（{STATUS_LABELS[incident.status]}），本次操作未生效。")
    assert incident.id is not None
    if parts[0] == "ack":
        incident.status, incident.acked_by, incident.acked_at = "acked", ctx.user, now
        label, kind = f"已收到·{ctx.name_of(ctx.user)}", "acked"
    else:
        if incident.status == "open":
            incident.acked_by, incident.acked_at = ctx.user, now
        incident.status, incident.resolved_by, incident.resolved_at = "resolved", ctx.user, now
        label, kind = f"已处置·{ctx.name_of(ctx.user)}", "resolved"
    incident.next_page_at = None
    ctx.session.add(incident)
    ctx.session.add(IncidentEvent(incident_id=incident.id, at=now, kind=kind, actor=ctx.user))
    # The clicked card keeps only 已处置 after 收到 (greyed after 已处置); every other page of
    # this incident is greyed for all its holders, so nobody acts on a stale page.
    if click.response_code:
        if kind == "acked":
            raiser = ctx.name_of(incident.raised_by)
            ctx.outbox.update_card(click.response_code, card=views.incident_handling_card(
                incident, raiser, ctx.settings.tz, click.task_id, ctx.name_of(ctx.user)))
        else:
            ctx.outbox.update_card(click.response_code, replace_name=label[:20])
    await ctx.outbox.close_cards(incident_subject(incident), replace_name=label[:20], keep=click.task_id)
    await append_audit(session=ctx.session, at=now, actor=ctx.user, action=f"incident_{kind}",
                       details={"incident": incident.id})
    verb = "已确认收到" if kind == "acked" else "已处置完毕"
    if incident.raised_by != ctx.user:
        ctx.outbox.send_text([incident.raised_by], f"您报告的突发事件{incident.id}号{ctx.name_of(ctx.user)}{verb}。")
    ctx.reply_text(f"已记录：事件{incident.id}号{verb}。" + ("处置完毕后请点“已处置”。" if kind == "acked" else ""))


async def duty_ids(ctx: Context) -> list[str]:
    return [s.userid for s in await duty_repo.on_duty_at(ctx.session, ctx.now())]


@router.command("incidents", aliases=("事件",), usage=INCIDENT_USAGE, summary="突发事件列表，或某一事件的完整时间线")
async def on_incidents(ctx: Context, cmd: Command) -> None:
    tz = ctx.settings.tz
    if cmd.argv:
        if len(cmd.argv) != 1 or not cmd.argv[0].isdigit():
            raise UserFacingError(views.usage(INCIDENT_USAGE))
        incident = await ctx.session.get(Incident, int(cmd.argv[0]))
        if incident is None:
            raise UserFacingError(f"没有编号为 {cmd.argv[0]} 的突发事件。")
        events = await ctx.session.exec(
            select(IncidentEvent).where(IncidentEvent.incident_id == incident.id).order_by(col(IncidentEvent.id))
        )
        names = {m.userid: m.name for m in ctx.settings.staff}
        lines = [f"【突发事件{incident.id}号】{STATUS_LABELS[incident.status]}", incident.content, "—— 时间线 ——"]
        for event in events.all():
            who = names.get(event.actor, event.actor) if event.actor not in ("", "system") else "系统"
            to = event.details.get("to") if event.details else None
            suffix = f" → {views.names(to, names)}" if to else ""
            lines.append(f"{fmt_local(event.at, tz)} {who} {EVENT_LABELS.get(event.kind, event.kind)}{suffix}")
        ctx.reply_text("\n".join(lines))
        return
    rows = (await ctx.session.exec(select(Incident).order_by(col(Incident.id).desc()).limit(15))).all()
    if not rows:
        ctx.reply_text("暂无突发事件记录。")
        return
    lines = ["【突发事件】最近 15 件："]
    for incident in rows:
        lines.append(f"{incident.id}号 {fmt_local(incident.raised_at, tz)} {STATUS_LABELS[incident.status]}：{incident.content[:40]}")
    lines.append("发送 /incidents 编号 查看时间线。")
    ctx.reply_text("\n".join(lines))


# ---------------------------------------------------------------- 巡检 card


@router.card("dy")
async def on_inspection_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    if len(parts) != 2 or parts[0] != "done" or not parts[1].isdigit():
        raise UserFacingError(views.UNKNOWN_CARD)
    inspection = await ctx.session.get(Inspection, int(parts[1]), with_for_update=True)
    if inspection is None or inspection.task_id != click.task_id:
        raise UserFacingError(views.UNKNOWN_CARD)
    if inspection.done_at is not None:
        raise UserFacingError(f"{inspection.day} 的巡检已由{ctx.name_of(inspection.done_by)}完成，本次操作未生效。")
    if ctx.user != inspection.userid and ctx.user not in await duty_ids(ctx) and not is_admin(ctx):
        raise UserFacingError("您不是今日巡检的值班人员，本次操作未生效。")
    now = ctx.now()
    inspection.done_at, inspection.done_by = now, ctx.user
    ctx.session.add(inspection)
    if click.response_code:
        ctx.outbox.update_card(click.response_code, replace_name=f"已完成·{ctx.name_of(ctx.user)}"[:20])
    await append_audit(session=ctx.session, at=now, actor=ctx.user, action="inspection_done",
                       details={"day": inspection.day, "late": now > inspection.due_at})
    late = "（已超时）" if now > inspection.due_at else ""
    ctx.reply_text(f"已记录：{inspection.day} 日常巡检完成{late}。")


