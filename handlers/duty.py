"""Duty-watch commands and cards: /duty (值班), /duty swap, /alert (突发), /incidents, 巡检 and 事件 buttons."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import col, select

from bot import views
from bot.core.config import INCIDENT_KIND_LABELS, INCIDENT_KINDS, INCIDENT_STATUS_LABELS
from bot.core.errors import UserFacingError
from bot.rules.calendar import fmt_local, local_at, local_day
from bot.services import duty, duty_calendar, reading, rectification
from bot.services.duty import INCIDENT_STEPS
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from bot.wecom.events import CardClick
from handlers.args import DAY_TEXT, card_number, parse_day, parse_int, parse_number
from storage import duty_repo
from storage.duty_models import Incident, IncidentEvent

router = Router("duty")

DUTY_USAGE = (
    "/duty [天数]；/duty swap YYYY-MM-DD userid [副班|带班领导]；/duty ical（日历订阅链接）；"
    "/duty ical 重置（更换链接；管理员可加 全单位 或 userid）"
)
ALERT_USAGE = "/alert [网络安全|舆情|内容差错|其他] 事件内容"
INCIDENT_USAGE = (
    "/incidents [编号]；/incidents 编号 上报 对象 方式 [说明]；/incidents 编号 纠错|删除|回应|处置 说明；"
    "/incidents 编号 总结 说明"
)
EVENT_LABELS = {
    "raised": "报告",
    "paged": "通知值班",
    "escalated": "上报",
    "acked": "收到",
    "resolved": "处置完毕",
    "reported": "上报",
    "action": "处置",
    "summary": "总结结案",
}
ROLE_WORDS = {"主班": "primary", "副班": "deputy", "带班领导": "leader", "带班": "leader"}
SWAP_HORIZON = timedelta(days=366)  # a shift further ahead than this cannot be moved yet


# ---------------------------------------------------------------- /duty


@router.command(
    "duty",
    aliases=("值班",),
    usage=DUTY_USAGE,
    summary="值班表；调班：/duty swap 日期 userid；日历订阅：/duty ical",
)
async def on_duty(ctx: Context, cmd: Command) -> None:
    if cmd.argv and cmd.argv[0] in ("swap", "调班", "换班"):
        await swap(ctx, cmd.argv[1:])
        return
    if cmd.argv and cmd.argv[0] in ("ical", "日历", "订阅"):
        if len(cmd.argv) == 1:
            ctx.reply_text(await duty_calendar.links_message(ctx))
        elif cmd.argv[1] in duty_calendar.RENEW_WORDS and len(cmd.argv) <= 3:
            ctx.reply_text(await duty_calendar.renew_link(ctx, cmd.argv[2] if len(cmd.argv) == 3 else None))
        else:
            raise UserFacingError(views.usage(DUTY_USAGE))
        return
    days = 7
    if cmd.argv:
        if len(cmd.argv) != 1:
            raise UserFacingError(views.usage(DUTY_USAGE))
        days = parse_int(cmd.argv[0], DUTY_USAGE, 1, 31)
    tz = ctx.settings.tz
    now = ctx.now()
    today = local_day(now, tz)
    start = local_at(today, ctx.settings.duty.handover_time, tz) - timedelta(days=1)
    shifts = await duty_repo.shifts_between(
        ctx.session, max(start, now - timedelta(hours=1)), start + timedelta(days=days + 1)
    )
    if not shifts:
        ctx.reply_text("还没有排班。管理员可在配置的 [duty] 中设置轮值，或导入排班表。")
        return
    lines = ["【值班表】"]
    for shift_start in sorted({s.start_at for s in shifts}):
        group = [s for s in shifts if s.start_at == shift_start]
        who = "，".join(
            f"{duty_repo.ROLE_LABELS.get(s.role, s.role)} {ctx.name_of(s.userid)}"
            for s in sorted(group, key=lambda s: duty_repo.ROLES.index(s.role))
        )
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
    if day > local_day(ctx.now(), ctx.settings.tz) + SWAP_HORIZON:
        raise UserFacingError("只能调整一年以内的班次。")
    role = ROLE_WORDS.get(args[2], "") if len(args) == 3 else "primary"
    if not role:
        raise UserFacingError(views.usage(DUTY_USAGE))
    ctx.reply_text((await duty.swap_shift(ctx, day, role, args[1])).message)


@router.card("sw")
async def on_swap_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    if len(parts) != 5 or parts[0] not in ("ok", "no") or parts[2] not in duty_repo.ROLE_LABELS:
        raise UserFacingError(views.UNKNOWN_CARD)
    verdict, day_text, role, target, holder = parts
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise UserFacingError(views.UNKNOWN_CARD) from None
    if day > local_day(ctx.now(), ctx.settings.tz) + SWAP_HORIZON:
        raise UserFacingError(views.UNKNOWN_CARD)
    done = await duty.answer_swap(
        ctx,
        day,
        role,
        target,
        holder,
        agree=verdict == "ok",
        task_id=click.task_id,
        response_code=click.response_code,
    )
    ctx.reply_text(done.message)


# ---------------------------------------------------------------- /alert and incidents


@router.command(
    "alert", aliases=("突发",), usage=ALERT_USAGE, summary="报告突发事件，值班人员立即收到并须确认"
)
async def on_alert(ctx: Context, cmd: Command) -> None:
    words = cmd.argv
    kind = INCIDENT_KINDS.get(words[0], "") if words else ""
    args = " ".join(words[1:]) if kind else cmd.args.strip()
    content = " ".join(p for p in (args, cmd.body.strip()) if p)
    if not content:
        raise UserFacingError(views.usage(ALERT_USAGE))
    ctx.reply_text((await duty.raise_incident(ctx, content, kind or "other")).message)


def incident_lines(ctx: Context, incident: Incident, events: list[IncidentEvent]) -> list[str]:
    """An incident as an inspector reads it: kind, status, the times to acknowledge and to report,
    the timeline, whom it still has to be reported to, and the closing summary."""
    tz, names = ctx.settings.tz, ctx.settings.staff_names
    kind = INCIDENT_KIND_LABELS.get(incident.kind, incident.kind)
    lines = [
        f"【突发事件{incident.id}号】{kind} · {INCIDENT_STATUS_LABELS[incident.status]}",
        incident.content,
    ]
    reported = [e for e in events if e.kind == "reported"]
    timing = []
    if incident.acked_at is not None:
        timing.append(f"确认用时 {minutes_between(incident.raised_at, incident.acked_at)} 分钟")
    if reported:
        timing.append(f"首次上报用时 {minutes_between(incident.raised_at, reported[0].at)} 分钟")
    if timing:
        lines.append("；".join(timing))
    lines.append("—— 时间线 ——")
    for event in events:
        who = names.get(event.actor, event.actor) if event.actor not in ("", "system") else "系统"
        details = event.details or {}
        if event.kind == "reported":
            suffix = f" {details.get('to', '')}（{details.get('how', '')}）" + (
                f"：{details['note']}" if details.get("note") else ""
            )
        elif event.kind == "action":
            suffix = f"·{details.get('action', '')}：{details.get('note', '')}"
        elif event.kind == "summary":
            suffix = f"：{details.get('note', '')}"
        else:
            to = details.get("to")
            suffix = f" → {views.names(to, names)}" if to else ""
        lines.append(f"{fmt_local(event.at, tz)} {who} {EVENT_LABELS.get(event.kind, event.kind)}{suffix}")
    done = {e.details.get("to") for e in reported}
    pending = [t.name for t in duty.report_targets(ctx.settings, incident.kind) if t.name not in done]
    if pending and not incident.summary:
        lines.append(f"尚未登记上报：{'、'.join(pending)}（/incidents {incident.id} 上报 对象 方式）")
    return lines


def minutes_between(start: datetime, end: datetime) -> int:
    return int((end - start).total_seconds() // 60)


@router.card("in")
async def on_incident_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    incident_id = card_number(parts[1]) if len(parts) == 2 else None
    if incident_id is None or parts[0] not in ("ack", "done"):
        raise UserFacingError(views.UNKNOWN_CARD)
    done = await duty.answer_incident(
        ctx, incident_id, resolve=parts[0] == "done", task_id=click.task_id, response_code=click.response_code
    )
    ctx.reply_text(done.message)


@router.command(
    "incidents", aliases=("事件",), usage=INCIDENT_USAGE, summary="突发事件列表；或某一事件的完整记录"
)
async def on_incidents(ctx: Context, cmd: Command) -> None:
    tz = ctx.settings.tz
    if len(cmd.argv) >= 2:
        if cmd.argv[1] not in INCIDENT_STEPS:
            raise UserFacingError(views.usage(INCIDENT_USAGE))
        number = parse_number(cmd.argv[0], INCIDENT_USAGE)
        words = [*cmd.argv[2:], *cmd.body.split()]
        ctx.reply_text((await duty.record_incident_step(ctx, number, cmd.argv[1], words)).message)
        return
    if cmd.argv:
        incident = await ctx.session.get(Incident, parse_number(cmd.argv[0], INCIDENT_USAGE))
        if incident is None:
            raise UserFacingError(f"没有编号为 {cmd.argv[0]} 的突发事件。")
        events = list(
            (
                await ctx.session.exec(
                    select(IncidentEvent)
                    .where(IncidentEvent.incident_id == incident.id)
                    .order_by(col(IncidentEvent.id))
                )
            ).all()
        )
        ctx.reply_text("\n".join(incident_lines(ctx, incident, events)))
        return
    rows = (await ctx.session.exec(select(Incident).order_by(col(Incident.id).desc()).limit(15))).all()
    if not rows:
        ctx.reply_text("暂无突发事件记录。")
        return
    lines = ["【突发事件】最近 15 件："]
    for incident in rows:
        kind = INCIDENT_KIND_LABELS.get(incident.kind, incident.kind)
        lines.append(
            f"{incident.id}号 {fmt_local(incident.raised_at, tz)} {kind} {INCIDENT_STATUS_LABELS[incident.status]}：{incident.content[:40]}"
        )
    lines.append("发送 /incidents 编号 查看时间线。")
    ctx.reply_text("\n".join(lines))


# ---------------------------------------------------------------- 巡检 card


INSPECT_USAGE = "/inspect；/inspect 问题 说明 [负责人userid 整改期限YYYY-MM-DD]"
FIX_USAGE = "/fix 编号 整改情况"


@router.command(
    "inspect", aliases=("巡检",), usage=INSPECT_USAGE, summary="巡检发现的问题；交办整改并跟踪到整改完成"
)
async def on_inspect(ctx: Context, cmd: Command) -> None:
    if not cmd.argv:
        pending = await rectification.open_rectifications(ctx)
        if not pending:
            ctx.reply_text(
                "没有未完成的整改。巡检发现问题请发送 /inspect 问题 说明 [负责人userid 整改期限YYYY-MM-DD]。"
            )
            return
        lines = [
            f"【整改】未完成 {len(pending)} 项：",
            *(rectification.rectification_line(f, ctx) for f in pending),
        ]
        ctx.reply_text("\n".join(lines))
        return
    if cmd.argv[0] != "问题":
        raise UserFacingError(views.usage(INSPECT_USAGE))
    words = cmd.argv[1:]
    assignee, last_day = "", None
    if len(words) >= 3 and DAY_TEXT.fullmatch(words[-1]) and words[-2] in ctx.settings.staff_by_id:
        assignee, last_day, words = words[-2], parse_day(words[-1]), words[:-2]
    text = " ".join(p for p in (" ".join(words), cmd.body.strip()) if p)
    ctx.reply_text((await rectification.record_finding(ctx, text, assignee, last_day)).message)


@router.command("fix", aliases=("整改",), usage=FIX_USAGE, summary="登记整改完成情况")
async def on_fix(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 1:
        raise UserFacingError(views.usage(FIX_USAGE))
    number = parse_number(cmd.argv[0], FIX_USAGE)
    note = " ".join(p for p in (" ".join(cmd.argv[1:]), cmd.body.strip()) if p)
    ctx.reply_text((await rectification.fix_finding(ctx, number, note)).message)


READ_USAGE = "/read 编号 无误；/read 编号 问题 说明"


@router.command("read", aliases=("读网",), usage=READ_USAGE, summary="登记读网结果")
async def on_read(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) < 2 or cmd.argv[1] not in ("无误", "问题"):
        raise UserFacingError(views.usage(READ_USAGE))
    number = parse_number(cmd.argv[0], READ_USAGE)
    note = " ".join(p for p in (" ".join(cmd.argv[2:]), cmd.body.strip()) if p)
    outcome = "ok" if cmd.argv[1] == "无误" else "problem"
    ctx.reply_text((await reading.answer(ctx, number, outcome, note)).message)


@router.card("rd")
async def on_reading_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    number = card_number(parts[1]) if len(parts) == 2 else None
    if number is None or parts[0] not in ("ok", "problem"):
        raise UserFacingError(views.UNKNOWN_CARD)
    if parts[0] == "problem":
        ctx.reply_text(f"请写明发现的问题：/read {number} 问题 说明（如：政务公开栏目第3条链接失效）。")
        return
    done = await reading.answer(ctx, number, "ok", task_id=click.task_id, response_code=click.response_code)
    ctx.reply_text(done.message)


@router.card("dy")
async def on_inspection_click(ctx: Context, click: CardClick, parts: list[str]) -> None:
    number = card_number(parts[1]) if len(parts) == 2 else None
    if number is not None and parts[0] == "problem":
        # a card cannot take text: the problem is written down with /inspect, the card stays open
        ctx.reply_text(
            "请写明发现的问题：/inspect 问题 说明 [负责人userid 整改期限YYYY-MM-DD]；"
            "全部登记后点卡片上的“已完成”。"
        )
        return
    if number is None or parts[0] != "done":
        raise UserFacingError(views.UNKNOWN_CARD)
    done = await duty.complete_inspection(
        ctx, number, task_id=click.task_id, response_code=click.response_code
    )
    ctx.reply_text(done.message)
