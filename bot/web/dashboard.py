"""The 概况 page (/app/dashboard) for leaders and admins: the dashboard's figures as text, tables
and server-drawn SVG charts, each draft linked to its page."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from bot import views
from bot.core.config import ERROR_KIND_LABELS, INCIDENT_KIND_LABELS, INCIDENT_STATUS_LABELS
from bot.exports.periods import REPORT_PERIOD_TEXT, PeriodError, parse_report_period
from bot.rules.calendar import WEEKDAYS, fmt_local, last_day_of, local_day
from bot.services import dashboard
from bot.services.scope import Work
from bot.web.charts import AccountBar, stacked_by_age, time_left
from bot.web.pages import Workspace
from storage.duty_repo import ROLE_LABELS

log = logging.getLogger(__name__)

PERIOD_MAX = 12  # characters of ?period= worth reading


@dataclass(frozen=True)
class DashboardPage:
    workspace: Workspace

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/dashboard", self.show)]

    async def show(self, request: web.Request) -> web.StreamResponse:
        userid = await self.workspace.signed_in(request)
        if not isinstance(userid, str):
            return userid
        asked = request.query.get("period", "").strip()[:PERIOD_MAX]
        async with self.workspace.work(userid, write=False) as work:
            if not dashboard.may_see_dashboard(work):
                log.warning("dashboard refused to %s", userid)
                return self.workspace.message(
                    views.dashboard_refused(dashboard.DASHBOARD_ROLES), status=403, title="无权查看"
                )
            tz, now = work.settings.tz, work.now()
            problem = None
            try:
                period = parse_report_period(asked, tz, local_day(now, tz))
            except PeriodError as exc:
                problem = f"{exc}；以下为本季度。"
                period = parse_report_period("", tz, local_day(now, tz))
            figures = await dashboard.dashboard(work, period.start, period.end)
            context = page_context(work, figures)
        return self.workspace.render(
            "dashboard.html",
            user_name=work.settings.name_of(userid),
            now=fmt_local(now, tz, "%Y-%m-%d %H:%M"),
            period={
                "label": period.label,
                "slug": period.slug,
                "asked": asked,
                "problem": problem,
                "hint": REPORT_PERIOD_TEXT,
                "ongoing": period.start <= now < period.end,
            },
            **context,
        )


def page_context(work: Work, figures: dashboard.Dashboard) -> dict[str, Any]:
    """The figures as the template shows them: local times, Chinese labels, names, charts."""
    settings, now = work.settings, work.now()
    tz = settings.tz

    def when(moment: datetime | None) -> str:
        return fmt_local(moment, tz) if moment is not None else ""

    drafts = figures.drafts
    stage_rows = [(row.step, row.by_age) for row in drafts.stages]
    overdue = [
        {
            "id": w.draft.id,
            "title": w.draft.title,
            "step": w.step,
            "since": when(w.draft.stage_entered_at),
            "waited": views.duration_text(w.waited),
            "pending_hours": f"{w.pending / timedelta(hours=1):.0f}",
            "people": views.names(w.people, settings.staff_names),
        }
        for w in drafts.overdue
    ]

    accounts = figures.accounts
    warn = timedelta(hours=max(settings.freshness.warn_hours)) if settings.freshness.warn_hours else None
    longest = max(
        [a.period for a in accounts.active], default=timedelta(hours=settings.freshness.period_hours)
    )
    account_rows = [
        {
            "name": a.account.name,
            "platform": a.account.platform,
            "left": views.remaining_text(a.left),
            "deadline": when(a.account.deadline_at),
            "overdue": a.overdue,
            "unreviewed": a.account.last_post_at is not None and not a.account.last_post_reviewed,
            "never": a.account.last_post_at is None,
        }
        for a in accounts.active
    ]

    duty = figures.duty
    incidents = figures.incidents
    median = incidents.median_ack
    return {
        "drafts": {
            "in_review": drafts.in_review,
            "returned": drafts.returned,
            "ages": views.DRAFT_AGE_LABELS,
            "stages": [{"step": r.step, "by_age": r.by_age, "total": r.total} for r in drafts.stages],
            "chart": stacked_by_age(
                "审核中稿件：各环节件数（按在本环节停留时间）", stage_rows, views.DRAFT_AGE_LABELS
            ),
            "overdue": overdue,
            "remind_after": f"{settings.reminders.remind_after_hours:g}",
            "workdays_only": settings.reminders.workdays_only,
        },
        "errors": {
            "total": figures.errors.total,
            "by_kind": [(ERROR_KIND_LABELS.get(k, k), n) for k, n in figures.errors.by_kind],
            "cases": [
                {
                    "id": case.id,
                    "kind": ERROR_KIND_LABELS.get(case.kind, case.kind),
                    "action": views.CASE_ACTION_LABELS.get(case.action, case.action),
                    "at": when(case.recorded_at),
                    "draft_id": case.draft_id,
                    "title": title,
                    "version": case.version,
                }
                for case, title in figures.errors.cases
            ],
        },
        "duty": {
            "on_duty": [
                {"role": ROLE_LABELS.get(s.role, s.role), "name": work.name_of(s.userid)}
                for s in duty.on_duty
            ],
            "primary_now": any(s.role == "primary" for s in duty.on_duty),
            "days": [
                {
                    "label": f"{day.day:%m-%d} 周{WEEKDAYS[day.day.weekday()]}",
                    "today": day.day == local_day(now, tz),
                    "rest": not day.workday,
                    "slots": [
                        {
                            "at": fmt_local(slot.start, tz, "%H:%M"),
                            "people": [
                                {"role": ROLE_LABELS.get(role, role), "name": work.name_of(userid)}
                                for role, userid in slot.people.items()
                            ],
                            "planned": slot.planned,
                        }
                        for slot in day.slots
                    ],
                    "gaps": [_hours_of_day(a, b, tz) for a, b in day.gaps],
                }
                for day in duty.days
            ],
            "gaps": [
                {"from": when(a), "to": when(b), "hours": views.duration_text(b - a)} for a, b in duty.gaps
            ],
            "horizon": dashboard.CALENDAR_DAYS,
        },
        "accounts": {
            "rows": account_rows,
            "chart": time_left(
                "各账号距14×24小时更新期限的剩余时间",
                [AccountBar(a.account.name, a.left, views.remaining_text(a.left)) for a in accounts.active],
                longest=longest,
                warn=warn,
            )
            if accounts.active
            else None,
            "overdue": sum(a.overdue for a in accounts.active),
            "paused": [
                {
                    "name": a.name,
                    "platform": a.platform,
                    "until": f"{last_day_of(a.paused_until, tz):%m-%d}" if a.paused_until else "",
                    "reason": a.pause_reason,
                }
                for a in accounts.paused
            ],
            "closed": [
                {"name": a.name, "platform": a.platform, "at": when(a.closed_at)} for a in accounts.closed
            ],
            "unknown": [a.name for a in accounts.unknown],
        },
        "incidents": {
            "unresolved": [
                {
                    "id": i.id,
                    "kind": INCIDENT_KIND_LABELS.get(i.kind, i.kind),
                    "status": INCIDENT_STATUS_LABELS.get(i.status, i.status),
                    "content": i.content[:60],
                    "raised": when(i.raised_at),
                    "age": views.duration_text(now - i.raised_at),
                    "acked": i.acked_at is not None,
                }
                for i in incidents.unresolved
            ],
            "raised": [
                {
                    "id": i.id,
                    "kind": INCIDENT_KIND_LABELS.get(i.kind, i.kind),
                    "status": INCIDENT_STATUS_LABELS.get(i.status, i.status),
                    "raised": when(i.raised_at),
                    "ack": dashboard.ack_minutes(i),
                    "by": work.name_of(i.acked_by) if i.acked_by else "",
                }
                for i in incidents.raised
            ],
            "acked": len(incidents.ack_times),
            "median": f"{median:g}" if median is not None else None,
            "longest": incidents.longest_ack,
        },
    }


def _hours_of_day(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """A stretch within one local day as its hours: 08:30–24:00."""
    begins, until = start.astimezone(tz), end.astimezone(tz)
    closing = "24:00" if until.date() > begins.date() else f"{until:%H:%M}"
    return f"{begins:%H:%M}–{closing}"
