"""巡检 findings and their 整改 (问题交办、限期整改: 湛江 第十二条、第十六条(一); 钦州 第二十八条): a
problem the person on duty writes down, given to someone with a deadline, reminded until fixed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import col, select

from bot.core.errors import UserFacingError, refuse_if_longer
from bot.rules.calendar import end_of_day, last_day_of, local_day
from bot.services.duty import duty_ids
from bot.services.scope import Scope, is_admin
from storage.audit_repo import append_audit
from storage.duty_models import InspectionFinding

MAX_TEXT = 500  # InspectionFinding.text and .fix_note


@dataclass(frozen=True)
class FindingDone:
    """The finding a service acted on, and what the person who acted is told."""

    finding: InspectionFinding
    message: str


async def record_finding(
    scope: Scope, text: str, assignee: str = "", last_day: date | None = None
) -> FindingDone:
    """A problem found in today's 巡检 by whoever is on duty (or an admin); with an assignee and a
    last day, an 整改 task for that person, due at the end of that day."""
    if scope.user not in await duty_ids(scope) and not is_admin(scope):
        raise UserFacingError("只有当前值班人员和管理员可以登记巡检发现的问题。")
    text = text.strip()
    if not text:
        raise UserFacingError("请写明发现的问题：/inspect 问题 说明 [负责人userid 整改期限YYYY-MM-DD]")
    refuse_if_longer(text, MAX_TEXT, "问题说明")
    now, tz = scope.now(), scope.settings.tz
    today = local_day(now, tz)
    due = None
    if assignee:
        if assignee not in scope.staff:
            raise UserFacingError(f"人员名单中没有 {assignee}，请核对 userid。")
        if last_day is None or last_day < today:
            raise UserFacingError("交办整改须写明不早于今天的整改期限（YYYY-MM-DD）。")
        due = end_of_day(last_day, tz)
    finding = InspectionFinding(
        day=today.isoformat(), text=text, found_by=scope.user, found_at=now, assignee=assignee, due_at=due
    )
    scope.session.add(finding)
    await scope.session.flush()
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="inspection_finding",
        details={
            "finding": finding.id,
            "text": text,
            "assignee": assignee,
            "due": due.isoformat() if due else None,
        },
    )
    if not assignee:
        return FindingDone(finding, f"已记录巡检问题{finding.id}号：{text}。")
    assert last_day is not None
    scope.outbox.send_text(
        [assignee],
        (
            f"【整改】{scope.name_of(scope.user)}在 {today:%m-%d} 日常巡检中发现：{text}。请于 {last_day:%Y-%m-%d} 前整改，"
            f"完成后发送 /fix {finding.id} 整改情况。"
        ),
    )
    return FindingDone(
        finding,
        (
            f"已记录巡检问题{finding.id}号并交{scope.name_of(assignee)}整改，期限 {last_day:%Y-%m-%d}；"
            "到期未整改将每天提醒并告知管理员。"
        ),
    )


async def fix_finding(scope: Scope, number: int, note: str) -> FindingDone:
    """The assignee (or an admin) says how the problem was fixed; whoever found it is told."""
    finding = await scope.session.get(InspectionFinding, number, with_for_update=True)
    if finding is None or not finding.assignee:
        raise UserFacingError(f"没有{number}号整改任务。发送 /inspect 查看未完成的整改。")
    if finding.fixed_at is not None:
        raise UserFacingError(f"{number}号整改已由{scope.name_of(finding.fixed_by)}完成，本次操作未生效。")
    if scope.user != finding.assignee and not is_admin(scope):
        raise UserFacingError(f"{number}号整改由{scope.name_of(finding.assignee)}负责，本次操作未生效。")
    note = note.strip()
    if not note:
        raise UserFacingError(f"请写明整改情况：/fix {number} 整改情况")
    refuse_if_longer(note, MAX_TEXT, "整改情况")
    now = scope.now()
    finding.fixed_at, finding.fixed_by, finding.fix_note = now, scope.user, note
    scope.session.add(finding)
    late = finding.due_at is not None and now > finding.due_at
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action="rectified",
        details={"finding": finding.id, "note": note, "late": late},
    )
    if finding.found_by != scope.user:
        scope.outbox.send_text(
            [finding.found_by],
            f"巡检问题{finding.id}号（{finding.text}）已由{scope.name_of(scope.user)}整改：{note}。",
        )
    return FindingDone(finding, f"已记录：{finding.id}号整改完成{'（已超期）' if late else ''}。")


async def open_rectifications(scope: Scope) -> list[InspectionFinding]:
    """整改 not yet done, the earliest deadline first."""
    rows = await scope.session.exec(
        select(InspectionFinding)
        .where(InspectionFinding.assignee != "", col(InspectionFinding.fixed_at).is_(None))
        .order_by(col(InspectionFinding.due_at), col(InspectionFinding.id))
    )
    return list(rows.all())


def rectification_line(finding: InspectionFinding, scope: Scope) -> str:
    assert finding.due_at is not None
    late = "（已超期）" if scope.now() > finding.due_at else ""
    last_day = last_day_of(finding.due_at, scope.settings.tz)
    return f"{finding.id}. {finding.text} · {scope.name_of(finding.assignee)} · {last_day:%Y-%m-%d} 前{late}"
