"""/export (导出): the 保密审查表 or the 台账 for a period, sent back as an .xlsx file."""

from __future__ import annotations

from bot.core.errors import UserFacingError
from bot.exports.runner import PeriodError, export_filename, parse_period
from bot.wecom.context import Context
from bot.wecom.dispatcher import Command, Router
from storage.audit_repo import append_audit

router = Router("export")

EXPORT_USAGE = "/export [YYYY-MM | 起 止] [台账]（日期写成 YYYY-MM-DD）"


@router.command(
    "export", aliases=("导出",), usage=EXPORT_USAGE,
    summary="导出保密审查表（加“台账”导出三审三校台账），以 Excel 文件发给您",
    roles=("admin", "leader"),
)
async def on_export(ctx: Context, cmd: Command) -> None:
    words = cmd.argv
    kind = "form"
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
        [ctx.user], kind=kind, start=period.start, end=period.end, label=period.label,
        slug=period.slug, unit=ctx.settings.unit_name, timezone=ctx.settings.timezone,
        title=ctx.settings.export.form_heading(ctx.settings.unit_name),
    )
    await append_audit(
        session=ctx.session, at=ctx.now(), actor=ctx.user, action="export",
        details={"kind": kind, "period": period.label},
    )
    what = "保密审查表" if kind == "form" else "三审三校台账"
    filename = export_filename(kind, "xlsx", period)  # type: ignore[arg-type]
    ctx.reply_text(f"正在生成{period.label}的{what}，稍后以文件发给您：{filename}")
