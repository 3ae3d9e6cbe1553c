"""/export (导出): the 保密审查表 or the 台账 for a period; /report (报表): the quarter's or the year's
figures; each sent back as an .xlsx file (the report also as a chart picture)."""

from __future__ import annotations

from bot.core.errors import UserFacingError
from bot.exports.periods import REPORT_PERIOD_TEXT, PeriodError, parse_period, parse_report_period
from bot.exports.report import report_filename, summary_lines
from bot.exports.report_files import figures_in
from bot.exports.runner import Kind, export_filename
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from storage.audit_repo import append_audit

router = Router("export")

EXPORT_USAGE = "/export [YYYY-MM | 起 止] [台账]（日期写成 YYYY-MM-DD）"


@router.command(
    "export",
    aliases=("导出",),
    usage=EXPORT_USAGE,
    summary="导出保密审查表（加“台账”导出三审三校台账），以 Excel 文件发给您",
    roles=("admin", "leader"),
)
async def on_export(ctx: Context, cmd: Command) -> None:
    words = cmd.argv
    kind: Kind = "form"
    if words and words[-1] in ("台账", "ledger"):
        kind, words = "ledger", words[:-1]
    elif words and words[-1] in ("审查表", "form"):
        words = words[:-1]
    tz = ctx.settings.tz
    try:
        period = parse_period(words, tz, ctx.now().astimezone(tz).date())
    except PeriodError as exc:
        raise UserFacingError(f"{exc}。用法：{EXPORT_USAGE}") from None
    except (ValueError, OverflowError):  # a year the calendar cannot hold: 9999-12, 0001-01
        raise UserFacingError(f"日期超出范围。用法：{EXPORT_USAGE}") from None
    # Built by the outbox sender after this transaction commits: no long-held locks, and a
    # crash before delivery only delays the file.
    ctx.outbox.send_export(
        [ctx.user],
        kind=kind,
        start=period.start,
        end=period.end,
        label=period.label,
        slug=period.slug,
        unit=ctx.settings.unit_name,
        timezone=ctx.settings.timezone,
        title=ctx.settings.export.form_heading(ctx.settings.unit_name),
    )
    await append_audit(
        session=ctx.session,
        at=ctx.now(),
        actor=ctx.user,
        action="export",
        details={"kind": kind, "period": period.label},
    )
    what = "保密审查表" if kind == "form" else "三审三校台账"
    filename = export_filename(kind, "xlsx", period)
    ctx.reply_text(f"正在生成{period.label}的{what}，稍后以文件发给您：{filename}")


REPORT_USAGE = f"/report [{REPORT_PERIOD_TEXT}]（不写：本季度）"


@router.command(
    "report",
    aliases=("报表",),
    usage=REPORT_USAGE,
    summary="季度或年度统计报表（各账号和单位的更新、超期与第二十八条问责次数，巡检、读网、复核、错情和"
    "审核用时），以 Excel 文件和图表发给您",
    roles=("admin", "leader"),
)
async def on_report(ctx: Context, cmd: Command) -> None:
    if len(cmd.argv) > 1:
        raise UserFacingError(f"时间只写一个。用法：{REPORT_USAGE}")
    tz, now = ctx.settings.tz, ctx.now()
    try:
        period = parse_report_period(cmd.argv[0] if cmd.argv else "", tz, now.astimezone(tz).date())
    except PeriodError as exc:
        raise UserFacingError(f"{exc}。用法：{REPORT_USAGE}") from None
    if period.start > now:
        raise UserFacingError(f"{period.label}还没有开始。")
    # Built by the outbox sender after this transaction commits, with the figures as of now.
    ctx.outbox.send_report(
        [ctx.user],
        start=period.start,
        end=period.end,
        label=period.label,
        slug=period.slug,
        unit=ctx.settings.unit_name,
        timezone=ctx.settings.timezone,
        as_of=now,
        period_hours=ctx.settings.freshness.period_hours,
    )
    await append_audit(
        session=ctx.session,
        at=now,
        actor=ctx.user,
        action="export",
        details={"kind": "report", "period": period.label},
    )
    # the headline numbers now, from this transaction's view (the file is built from the same data)
    figures = await figures_in(
        ctx.session,
        period,
        unit=ctx.settings.unit_name,
        now=now,
        tz=tz,
        default_period_hours=ctx.settings.freshness.period_hours,
    )
    ctx.reply_text(
        "\n".join([*summary_lines(figures), f"Excel 文件（{report_filename(period)}）和图表稍后发给您。"])
    )
