"""The quarterly and annual figures (湛江 第十六条 每季度通报; 钦州 第二十八–三十二条): computed from a
period's facts, written as one xlsx, summarised in a few lines for chat."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO
from zoneinfo import ZoneInfo

from bot.core.config import ERROR_KIND_LABELS, INCIDENT_KIND_LABELS, INCIDENT_STATUS_LABELS
from bot.exports.periods import Period
from bot.exports.review_form import open_workbook, write_cell
from bot.rules.calendar import fmt_local
from bot.rules.update_record import Accountability, accountability, longest_gap, overdue_spells
from storage.account_models import CHANGE_FIELD_LABELS, REQUEST_KIND_LABELS
from storage.report_repo import AccountHistory, PeriodFacts, Tally

DAY = timedelta(days=1)
STATUS_LABELS = {"active": "考核中", "paused": "暂停", "closed": "已注销"}
NO_UNIT = "未填单位"


def report_filename(period: Period, extension: str = "xlsx") -> str:
    return f"统计报表_{period.slug}.{extension}"


@dataclass(frozen=True)
class AccountFigures:
    name: str
    platform: str
    unit: str
    status: str
    posts: int
    unreviewed: int
    longest_gap_days: float
    overdue_days: float
    warnings: int
    alarms: int
    lapse_months: tuple[int, ...]  # 更新不及时 in the period, by month (several in a month count once)
    year: Accountability  # the year to the period's end

    @property
    def lapses(self) -> int:
        return len(self.lapse_months)


@dataclass(frozen=True)
class UnitFigures:
    unit: str
    accounts: int
    posts: int
    overdue_days: float
    warnings: int
    alarms: int
    lapses: int
    year: Accountability


@dataclass(frozen=True)
class StageFigures:
    name: str
    decided: int
    median_hours: float
    p90_hours: float


@dataclass(frozen=True)
class Figures:
    """Everything the report shows, computed once for the xlsx, the chart and the chat summary."""

    period: Period
    unit: str
    as_of: datetime  # the period's end, or now if it has not ended
    accounts: list[AccountFigures]
    units: list[UnitFigures]
    inspections: Tally
    findings_recorded: int
    rectifications: Tally
    readings: Tally
    rechecks: Tally
    cases_by_kind: Counter[str]
    cases_by_stage: Counter[str]  # a case counts for every stage that signed the version
    stage_order: list[str]
    corrections: int
    retractions: int
    case_rows: list[list[object]]
    incidents: Counter[str]
    stages: list[StageFigures]
    # the records behind the numbers, one row each (cells as the sheets show them)
    finding_rows: list[list[object]]
    incident_rows: list[list[object]]
    request_rows: list[list[object]]


def _days(amount: timedelta) -> float:
    return round(amount / DAY, 1)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (the value at rank ⌈share·n⌉ of the sorted values)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def _account(
    history: AccountHistory, period: Period, as_of: datetime, tz: ZoneInfo, period_length: timedelta
) -> AccountFigures:
    account = history.account
    closed_at = account.closed_at
    if account.status == "closed" and closed_at is None:  # closed before the time was recorded
        closed_at = account.deadline_at or account.created_at
    spells = overdue_spells(
        registered=account.created_at,
        posts=history.posts,
        pauses=history.pauses,
        period=period_length,
        closed_at=closed_at,
        now=as_of,
    )
    stop = as_of if closed_at is None else min(as_of, closed_at)
    year = period.start.astimezone(tz).year
    counted = accountability(spells, year, tz, through=as_of)
    in_period = accountability([s for s in spells if s.since >= period.start], year, tz, through=as_of)
    return AccountFigures(
        name=account.name,
        platform=account.platform,
        unit=account.unit or NO_UNIT,
        status=STATUS_LABELS.get(account.status, account.status),
        posts=history.posts_in_period,
        unreviewed=history.unreviewed_in_period,
        longest_gap_days=_days(
            longest_gap(
                registered=account.created_at,
                posts=history.posts,
                start=max(period.start, account.created_at),
                end=stop,
            )
        )
        if account.created_at < stop
        else 0.0,
        overdue_days=_days(sum((s.overlap(period.start, stop) for s in spells), timedelta(0))),
        warnings=history.warnings,
        alarms=history.alarms,
        lapse_months=in_period.months,
        year=counted,
    )


def compute_figures(
    facts: PeriodFacts, period: Period, *, unit: str, now: datetime, tz: ZoneInfo, default_period_hours: int
) -> Figures:
    as_of = min(period.end, now)
    accounts = [
        _account(
            history, period, as_of, tz, timedelta(hours=history.account.period_hours or default_period_hours)
        )
        for history in facts.accounts
    ]
    units = []
    for name in dict.fromkeys(a.unit for a in accounts):
        mine = [a for a in accounts if a.unit == name]
        units.append(
            UnitFigures(
                unit=name,
                accounts=len(mine),
                posts=sum(a.posts for a in mine),
                overdue_days=round(sum(a.overdue_days for a in mine), 1),
                warnings=sum(a.warnings for a in mine),
                alarms=sum(a.alarms for a in mine),
                lapses=len({m for a in mine for m in a.lapse_months}),
                year=Accountability(tuple(sorted({m for a in mine for m in a.year.months}))),
            )
        )
    by_stage: Counter[str] = Counter()
    order: list[str] = []
    rows: list[list[object]] = []
    for case, title in facts.cases:
        stages = list(dict.fromkeys(s.get("stage", "") for s in case.signers if s.get("stage")))
        by_stage.update(stages)
        order += [s for s in stages if s not in order]
        rows.append(
            [
                case.id or 0,
                _when(case.recorded_at, tz),
                case.draft_id,
                title,
                ERROR_KIND_LABELS.get(case.kind, case.kind),
                "纠错" if case.action == "correct" else "撤稿",
                case.description,
                "，".join(f"{s.get('stage', '')} {s.get('name', '')}" for s in case.signers),
            ]
        )
    stage_figures: list[StageFigures] = []
    by_name: dict[tuple[int, str], list[float]] = {}
    for span in facts.stages:
        by_name.setdefault((span.stage, span.name), []).append(
            (span.decided - span.began) / timedelta(hours=1)
        )
    for (_, name), hours in sorted(by_name.items()):
        stage_figures.append(
            StageFigures(
                name, len(hours), round(statistics.median(hours), 1), round(percentile(hours, 0.9), 1)
            )
        )
    return Figures(
        period=period,
        unit=unit,
        as_of=as_of,
        accounts=accounts,
        units=units,
        inspections=facts.inspections,
        findings_recorded=facts.findings_recorded,
        rectifications=facts.findings,
        readings=facts.readings,
        rechecks=facts.rechecks,
        cases_by_kind=Counter(case.kind for case, _ in facts.cases),
        cases_by_stage=by_stage,
        stage_order=sorted(order, key=_stage_rank),
        corrections=sum(case.action == "correct" for case, _ in facts.cases),
        retractions=sum(case.action == "retract" for case, _ in facts.cases),
        case_rows=rows,
        incidents=facts.incidents,
        stages=stage_figures,
        finding_rows=_finding_rows(facts, tz, as_of),
        incident_rows=_incident_rows(facts, tz),
        request_rows=_request_rows(facts, tz),
    )


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    return fmt_local(moment, tz, "%Y-%m-%d %H:%M") if moment is not None else ""


def _minutes(start: datetime, end: datetime | None) -> object:
    return round((end - start) / timedelta(minutes=1)) if end is not None else ""


def _finding_rows(facts: PeriodFacts, tz: ZoneInfo, as_of: datetime) -> list[list[object]]:
    names = facts.names
    rows: list[list[object]] = []
    for f in facts.finding_rows:
        if not f.assignee:
            state = "仅记录"
        elif f.fixed_at is not None:
            state = "已整改" + ("（超期）" if f.due_at is not None and f.fixed_at > f.due_at else "")
        else:
            state = "超期未整改" if f.due_at is not None and f.due_at <= as_of else "整改中"
        due = f.due_at - timedelta(microseconds=1) if f.due_at is not None else None  # shown as its last day
        rows.append(
            [
                f.id or 0,
                f.day,
                f.text,
                names.get(f.found_by, f.found_by),
                names.get(f.assignee, f.assignee),
                due.astimezone(tz).strftime("%Y-%m-%d") if due is not None else "",
                _when(f.fixed_at, tz),
                f.fix_note,
                state,
            ]
        )
    return rows


def _incident_rows(facts: PeriodFacts, tz: ZoneInfo) -> list[list[object]]:
    names = facts.names

    def who(userid: str) -> str:
        return "系统" if userid in ("system", "") else names.get(userid, userid)

    rows: list[list[object]] = []
    for incident, events in facts.incident_rows:
        reports = [e for e in events if e.kind == "reported"]
        actions = [e for e in events if e.kind == "action"]
        rows.append(
            [
                incident.id or 0,
                INCIDENT_KIND_LABELS.get(incident.kind, incident.kind),
                incident.content[:200],
                who(incident.raised_by),
                _when(incident.raised_at, tz),
                who(incident.acked_by),
                _minutes(incident.raised_at, incident.acked_at),
                "；".join(
                    f"{e.details.get('to', '')}（{e.details.get('how', '')}，{_when(e.at, tz)}，{who(e.actor)}）"
                    for e in reports
                ),
                _minutes(incident.raised_at, min((e.at for e in reports), default=None)),
                "；".join(f"{e.details.get('action', '')}：{e.details.get('note', '')}" for e in actions),
                INCIDENT_STATUS_LABELS.get(incident.status, incident.status),
                incident.summary,
            ]
        )
    return rows


def _request_rows(facts: PeriodFacts, tz: ZoneInfo) -> list[list[object]]:
    names: Mapping[str, str] = facts.names  # Mapping.get(u, u) is a str even for an untyped u
    rows: list[list[object]] = []
    for r in facts.requests:
        d = r.details
        if r.kind == "open":
            what = (
                f"{d.get('platform', '')}，负责人：{'、'.join(names.get(u, u) for u in d.get('owners', []))}"
            )
        elif r.kind == "change":
            value = d.get("value")
            what = f"{CHANGE_FIELD_LABELS.get(d.get('field', ''), '')} → {'、'.join(names.get(u, u) for u in value) if isinstance(value, list) else value}"
        else:
            what = ""
        signed = "；".join(
            f"{names.get(x.get('userid', ''), x.get('userid', ''))} {'同意' if x.get('decision') == 'approve' else '不同意'}"
            f"（{_when(datetime.fromisoformat(x['at']), tz) if x.get('at') else ''}）{x.get('opinion') or ''}"
            for x in r.decisions
        )
        state = {"pending": "审批中", "approved": "已通过", "rejected": "未通过"}.get(r.status, r.status)
        if r.status == "approved":
            state += "，已备案" if r.filed_at is not None else "，待备案"
        rows.append(
            [
                r.id or 0,
                REQUEST_KIND_LABELS.get(r.kind, r.kind),
                r.account,
                what,
                r.reason,
                names.get(r.requested_by, r.requested_by),
                _when(r.requested_at, tz),
                signed,
                state,
                _when(r.filing_due_at, tz),
                _when(r.filed_at, tz),
                r.filing_note,
            ]
        )
    return rows


def _stage_rank(name: str) -> tuple[int, int, str]:
    """一审, 一校, 二审, 二校, 三审, 三校, then any other stage name."""
    for index, numeral in enumerate("一二三四五"):
        if name.startswith(numeral):
            return index, 0 if name.endswith("审") else 1, name
    return 9, 0, name


def rate(tally: Tally) -> str:
    return f"{tally.done / tally.total:.0%}" if tally.total else "—"


def summary_lines(figures: Figures) -> list[str]:
    """The chat summary: the headline numbers of the report."""
    accounts = figures.accounts
    late = [a for a in accounts if a.lapses]
    lines = [
        f"【统计报表】{figures.unit}{figures.period.label}"
        + ("（截至目前）" if figures.as_of < figures.period.end else ""),
        f"账号 {len(accounts)} 个，更新 {sum(a.posts for a in accounts)} 次"
        f"（未经本系统审核 {sum(a.unreviewed for a in accounts)} 次），"
        f"更新不及时 {sum(a.lapses for a in accounts)} 次（{len(late)} 个账号，同月算1次）。",
        f"巡检 {figures.inspections.done}/{figures.inspections.total}（完成率 {rate(figures.inspections)}），"
        f"发现问题 {figures.findings_recorded} 个，整改 {figures.rectifications.done}/{figures.rectifications.total}；"
        f"读网 {figures.readings.done}/{figures.readings.total}；发布后复核 {figures.rechecks.done}/{figures.rechecks.total}。",
        f"错情 {sum(figures.cases_by_kind.values())} 条（纠错 {figures.corrections}，撤稿 {figures.retractions}）。",
    ]
    reached = [u for u in figures.units if u.year.reminder_letters]
    if reached:
        lines.append(
            "第二十八条（年度累计）："
            + "；".join(
                f"{u.unit} 更新不及时 {u.year.reminder_letters} 次，达到{u.year.level}" for u in reached
            )
        )
    return lines


ACCOUNT_HEADER = (
    "账号",
    "平台",
    "单位",
    "状态",
    "更新次数",
    "其中未经本系统审核",
    "最长间隔（天）",
    "超期天数",
    "更新提醒（次）",
    "超期告警（次）",
    "本期更新不及时（次）",
    "年度更新不及时（次）",
    "年度提醒函",
    "年度约谈",
    "年度通报批评",
    "达到",
)
UNIT_HEADER = (
    "单位",
    "账号数",
    "更新次数",
    "超期天数",
    "更新提醒（次）",
    "超期告警（次）",
    "本期更新不及时（次）",
    "年度更新不及时（次）",
    "年度提醒函",
    "年度约谈",
    "年度通报批评",
    "达到",
)
CASE_HEADER = ("错情编号", "登记时间", "稿件编号", "信息名称", "种类", "处理", "说明", "签发人")
STAGE_HEADER = ("环节", "决定次数", "用时中位数（小时）", "用时P90（小时）")
FINDING_HEADER = (
    "编号",
    "巡检日期",
    "问题",
    "发现人",
    "整改负责人",
    "整改期限",
    "整改完成时间",
    "整改情况",
    "状态",
)
INCIDENT_HEADER = (
    "编号",
    "种类",
    "内容",
    "报告人",
    "报告时间",
    "确认人",
    "确认用时（分钟）",
    "上报（对象、方式、时间、经办人）",
    "上报用时（分钟）",
    "处置",
    "状态",
    "总结",
)
REQUEST_HEADER = (
    "编号",
    "类型",
    "账号",
    "内容",
    "理由",
    "申请人",
    "申请时间",
    "审批",
    "结果",
    "备案期限",
    "备案时间",
    "报送情况",
)


def write_report_xlsx(figures: Figures, out: BinaryIO, tz: ZoneInfo) -> None:
    wb = open_workbook(out)
    title = wb.add_format({"bold": True, "font_size": 14})
    bold = wb.add_format({"bold": True})
    note = wb.add_format({"italic": True, "font_color": "#555555"})

    def sheet(
        name: str,
        heading: str,
        header: tuple[str, ...],
        rows: list[list[object]],
        widths: tuple[int, ...],
        notes: tuple[str, ...] = (),
    ) -> None:
        ws = wb.add_worksheet(name)
        for index, width in enumerate(widths):
            ws.set_column(index, index, width)
        write_cell(ws, 0, 0, heading, title)
        for col, text in enumerate(header):
            write_cell(ws, 1, col, text, bold)
        for offset, values in enumerate(rows):
            for col, value in enumerate(values):
                if value != "":  # an empty cell stays blank
                    write_cell(ws, 2 + offset, col, value)
        for offset, text in enumerate(notes):
            write_cell(ws, 3 + len(rows) + offset, 0, text, note)

    label = f"{figures.unit}{figures.period.label}"
    as_of = _when(figures.as_of, tz)
    overview: list[list[object]] = [
        ["统计截至", as_of],
        ["账号数", len(figures.accounts)],
        ["更新次数", sum(a.posts for a in figures.accounts)],
        ["其中未经本系统审核", sum(a.unreviewed for a in figures.accounts)],
        ["更新不及时（次，同月算1次）", sum(a.lapses for a in figures.accounts)],
        [
            "巡检（应完成/已完成/按时完成）",
            f"{figures.inspections.total}/{figures.inspections.done}/{figures.inspections.on_time}",
        ],
        ["巡检完成率", rate(figures.inspections)],
        ["巡检发现问题", figures.findings_recorded],
        [
            "限期整改（交办/已整改/按期整改）",
            f"{figures.rectifications.total}/{figures.rectifications.done}/{figures.rectifications.on_time}",
        ],
        [
            "读网（应读/已读/发现问题）",
            f"{figures.readings.total}/{figures.readings.done}/{figures.readings.problems}",
        ],
        ["读网完成率", rate(figures.readings)],
        [
            "发布后复核（应复核/已复核/按时/发现问题）",
            f"{figures.rechecks.total}/{figures.rechecks.done}/{figures.rechecks.on_time}/{figures.rechecks.problems}",
        ],
        ["错情", sum(figures.cases_by_kind.values())],
        ["纠错", figures.corrections],
        ["撤稿", figures.retractions],
        *[
            [f"突发事件：{INCIDENT_KIND_LABELS.get(kind, kind)}", count]
            for kind, count in sorted(figures.incidents.items())
        ],
    ]
    sheet("概况", f"{label}统计报表", ("项目", "数值"), overview, (40, 24))
    sheet(
        "账号",
        f"{label}账号更新情况",
        ACCOUNT_HEADER,
        [
            [
                a.name,
                a.platform,
                a.unit,
                a.status,
                a.posts,
                a.unreviewed,
                a.longest_gap_days,
                a.overdue_days,
                a.warnings,
                a.alarms,
                a.lapses,
                a.year.reminder_letters,
                a.year.reminder_letters,
                a.year.interviews,
                a.year.public_criticisms,
                a.year.level,
            ]
            for a in figures.accounts
        ],
        (24, 10, 16, 8, *[10] * 11, 10),
        ACCOUNT_NOTES,
    )
    sheet(
        "单位",
        f"{label}各单位更新情况",
        UNIT_HEADER,
        [
            [
                u.unit,
                u.accounts,
                u.posts,
                u.overdue_days,
                u.warnings,
                u.alarms,
                u.lapses,
                u.year.reminder_letters,
                u.year.reminder_letters,
                u.year.interviews,
                u.year.public_criticisms,
                u.year.level,
            ]
            for u in figures.units
        ],
        (20, *[10] * 11),
        UNIT_NOTES,
    )
    matrix: list[list[object]] = [
        [word, figures.cases_by_kind.get(code, 0)] for code, word in ERROR_KIND_LABELS.items()
    ]
    matrix.append(["合计", sum(figures.cases_by_kind.values())])
    matrix.append([])
    matrix += [[f"{name}签发过的", figures.cases_by_stage[name]] for name in figures.stage_order]
    sheet(
        "错情统计",
        f"{label}错情（按种类、按环节）",
        ("种类 / 环节", "条数"),
        matrix,
        (24, 10),
        ("注：一条错情计入签发该版本的每一个环节（审与校）：它们都没有发现这个错误。",),
    )
    sheet("错情明细", f"{label}错情明细", CASE_HEADER, figures.case_rows, (8, 17, 8, 36, 8, 6, 40, 40))
    sheet(
        "审核用时",
        f"{label}各环节审核用时",
        STAGE_HEADER,
        [[s.name, s.decided, s.median_hours, s.p90_hours] for s in figures.stages],
        (12, 10, 18, 16),
        ("注：用时自稿件到达该环节（提交、上一环节审校完成或退回）起，至该环节作出决定止，按自然时间计。",),
    )
    sheet(
        "巡检问题",
        f"{label}巡检发现的问题与整改",
        FINDING_HEADER,
        figures.finding_rows,
        (6, 11, 40, 8, 10, 11, 17, 30, 12),
    )
    sheet(
        "突发事件",
        f"{label}突发事件与上报",
        INCIDENT_HEADER,
        figures.incident_rows,
        (6, 9, 40, 8, 17, 8, 10, 50, 10, 40, 8, 40),
        ("注：确认用时、上报用时自报告时起算（分钟）；上报对象不在企业微信的，登记其方式与经办人。",),
    )
    sheet(
        "账号申请",
        f"{label}账号开设、变更、注销",
        REQUEST_HEADER,
        figures.request_rows,
        (6, 6, 20, 30, 30, 8, 17, 50, 14, 17, 17, 30),
    )
    wb.close()


ACCOUNT_NOTES = (
    "注：1. 更新期限自上次更新（无更新记录的自登记）起算，暂停期间不计，暂停结束后重新起算；注销后不再计算。",
    "　　2. 更新不及时：每错过一次更新期限计一次，同一个月内的多次算1次（钦州 第二十八条）。",
    "　　3. 年度累计至统计截至时间：每次更新不及时对应一次提醒函；年度内提醒函每满2次约谈一次，约谈每满2次通报批评一次。",
)
UNIT_NOTES = ("注：单位的更新不及时按月计：同一个月内本单位任一账号超期都算1次。",)
