"""全员读网 (钦州 第十四条; 三审三校 五(二)3: 建立全员读网制度): whose turn it is to read which
section in each period, the turn's card, and its outcome (无误, or what was found)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import views
from bot.core.config import Settings
from bot.core.errors import UserFacingError, refuse_if_longer
from bot.rules.calendar import end_of_day, people_with_role
from bot.services.scope import Scope, is_admin
from bot.wecom.outbox import Outbox
from storage.audit_repo import append_audit
from storage.duty_models import ReadingTask

EPOCH = date(2024, 1, 1)  # a Monday: turns are counted from it, so the rota needs no start date
MAX_NOTE = 500  # ReadingTask.note
WHOLE_SITE = "本单位政府网站和政务新媒体"
OUTCOMES = {"ok": "读网无误", "problem": "发现问题"}


@dataclass(frozen=True)
class ReadingDone:
    """The turn a service acted on, and what the person who acted is told."""

    task: ReadingTask
    message: str


def period_of(day: date, settings: Settings) -> tuple[date, date]:
    """The period holding `day`: the day itself, or its week (Monday to Sunday)."""
    if settings.reading.every == "daily":
        return day, day
    first = day - timedelta(days=day.weekday())
    return first, first + timedelta(days=6)


def turn(first: date, settings: Settings) -> tuple[str, str]:
    """(reader, section) of the period starting on `first`: both rotate, one step a period."""
    reading = settings.reading
    step = (first - EPOCH).days // (1 if reading.every == "daily" else 7)
    section = reading.sections[step % len(reading.sections)] if reading.sections else WHOLE_SITE
    return reading.people[step % len(reading.people)], section


async def assign(
    session: AsyncSession, outbox: Outbox, settings: Settings, first: date, last: date, now: datetime
) -> ReadingTask:
    """The turn of the period [first, last]: its card to the reader, due at the end of `last`."""
    reader, section = turn(first, settings)
    task = ReadingTask(
        period=first.isoformat(),
        userid=reader,
        section=section,
        task_id=f"sanshen-read-{first.isoformat()}-{secrets.token_hex(4)}",
        sent_at=now,
        due_at=end_of_day(last, settings.tz),
    )
    session.add(task)
    await session.flush()
    outbox.send_card([reader], views.reading_card(task, settings.tz))
    return task


async def answer(
    scope: Scope,
    number: int,
    outcome: str,
    note: str = "",
    *,
    task_id: str | None = None,
    response_code: str = "",
) -> ReadingDone:
    """无误 ("ok") or what was found ("problem"), by the reader or an admin; a problem goes to the admins."""
    task = await scope.session.get(ReadingTask, number, with_for_update=True)
    if task is None or (task_id is not None and task.task_id != task_id):
        raise UserFacingError(views.UNKNOWN_CARD if task_id is not None else f"没有{number}号读网任务。")
    if task.done_at is not None:
        raise UserFacingError(f"{number}号读网已完成（{OUTCOMES[task.outcome]}），本次操作未生效。")
    if scope.user != task.userid and not is_admin(scope):
        raise UserFacingError(f"{number}号读网由{scope.name_of(task.userid)}负责，本次操作未生效。")
    note = note.strip()
    if outcome == "problem" and not note:
        raise UserFacingError(
            f"请写明发现的问题：/read {number} 问题 说明（如：政务公开栏目第3条链接失效）。"
        )
    refuse_if_longer(note, MAX_NOTE, "说明")
    now = scope.now()
    task.done_at, task.outcome, task.note = now, outcome, note
    scope.session.add(task)
    label = f"{OUTCOMES[outcome]}·{scope.name_of(scope.user)}"
    if response_code:
        scope.outbox.update_card(response_code, replace_name=label[:20])
    await append_audit(
        session=scope.session,
        at=now,
        actor=scope.user,
        action=f"reading_{outcome}",
        details={"reading": task.id, "section": task.section, "note": note},
    )
    if outcome == "problem":
        admins = [a for a in people_with_role(scope.settings, "admin") if a != scope.user]
        scope.outbox.send_text(
            admins,
            (
                f"【读网·发现问题】{scope.name_of(scope.user)}阅读“{task.section}”发现：{note}。"
                "请核实处理，需要整改的请值班人员登记：/inspect 问题 说明 负责人 期限。"
            ),
        )
        return ReadingDone(task, f"已记录：{number}号读网发现问题（{note}），已告知管理员。")
    return ReadingDone(task, f"已记录：{number}号读网（{task.section}）无误。")
