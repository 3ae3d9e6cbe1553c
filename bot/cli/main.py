"""Command line: serve, demo, check-config, export, report, verify-audit, menu sync and proofread."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

from bot.core.config import ConfigError, Settings, load_settings
from bot.core.log import setup_logging

log = logging.getLogger("sanshen")


def _load(path: str, *, with_files: bool = False, production: bool = True) -> Settings:
    """Settings, or "配置错误 key: reason" lines and exit 2; `with_files` also reads the data
    files and checks what a production deployment needs."""
    try:
        settings = load_settings(path)
        if with_files:
            from bot.app import check_watch_files

            check_watch_files(settings)
    except ConfigError as exc:
        sys.stderr.write(f"配置错误 {exc}\n")
        raise SystemExit(2) from None
    problems = settings.production_problems() if with_files and production else []
    if problems:
        sys.stderr.write("".join(f"配置错误 {problem}\n" for problem in problems))
        raise SystemExit(2)
    return settings


def _secrets(settings: Settings) -> list[str]:
    return [
        settings.wecom.secret,
        settings.wecom.token,
        settings.wecom.encoding_aes_key,
        settings.web.session_secret,
        settings.audit.key,
        *((password, unquote(password)) if (password := urlsplit(settings.wecom.proxy).password) else ()),
    ]


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import create_app
    from bot.core.event_loop import new_event_loop

    settings = _load(args.config, with_files=True)
    setup_logging(settings.log_level, _secrets(settings), settings.log_format)
    loop = new_event_loop()
    log.info(
        "serving %s on %s:%s (event loop: %s)",
        settings.server.callback_path,
        settings.server.host,
        settings.server.port,
        type(loop).__module__.split(".")[0],
    )
    web.run_app(
        create_app(settings, freeze_heap=True),
        loop=loop,
        host=settings.server.host,
        port=settings.server.port,
        print=None,
        access_log=None,
    )
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _load(args.config, with_files=True)
    sys.stdout.write(
        f"配置有效：{settings.unit_name}，{len(settings.staff)} 名人员，"
        f"{len(settings.chains)} 条审核链，数据库 {settings.database.url.split('://')[0]}\n"
    )
    from datetime import datetime

    from bot.rules.calendar import coverage_warning

    warning = coverage_warning(settings.calendar, datetime.now(settings.tz).date())
    if warning:
        sys.stdout.write(f"提示：{warning}\n")
    if not (args.online or args.send_test):
        return 0
    return _check_online(settings, send_test=args.send_test)


def cmd_sandbox(args: argparse.Namespace) -> int:
    """The training sandbox in the browser; never with the real WeCom address in the config."""
    settings = _load(args.config, with_files=True, production=False)
    if settings.wecom.is_real:
        from bot.cli.sandbox import REAL_WECOM_REFUSAL

        sys.stderr.write(f"配置错误 {REAL_WECOM_REFUSAL}\n")
        return 2
    from bot.cli.sandbox import serve_sandbox

    setup_logging("WARNING", _secrets(settings))
    try:
        return asyncio.run(serve_sandbox(settings, args.port))
    except KeyboardInterrupt:
        sys.stdout.write("演练环境已结束。\n")
        return 0


def _check_online(settings: Settings, *, send_test: bool) -> int:
    """Each online check on its own line: 通过 on stdout, 配置错误 on stderr; exit 2 on any error."""
    import aiohttp

    from bot.cli.online_check import check_online

    setup_logging("WARNING", _secrets(settings))

    async def run() -> list[Any]:
        async with aiohttp.ClientSession() as http:
            return await check_online(settings, http, send_test=send_test)

    findings = asyncio.run(run())
    for finding in findings:
        if finding.ok:
            sys.stdout.write(f"通过：{finding.line}\n")
        else:
            sys.stderr.write(f"配置错误 {finding.line}\n")
    return 0 if all(f.ok for f in findings) else 2


def cmd_demo(args: argparse.Namespace) -> int:
    setup_logging("WARNING" if not args.verbose else "INFO")
    if args.config:
        from bot.cli.rehearsal import run_rehearsal

        # the unit's file as check-config reads it (data files too), minus what only production needs
        return asyncio.run(run_rehearsal(_load(args.config, with_files=True, production=False)))
    from bot.cli.demo import run_demo

    return asyncio.run(run_demo(database_url=args.database))


async def _open_db(settings: Settings):
    """The unit's database as it is, for commands that work on its records: never created or
    migrated here (a mistyped path is 「数据库不存在」 and exit 2, not an empty database)."""
    from storage.db import DatabaseUnusable, make_session_factory, open_existing

    try:
        engine = await open_existing(settings.database.url)
    except DatabaseUnusable as exc:
        sys.stderr.write(f"{exc}\n")
        raise SystemExit(2) from None
    return engine, make_session_factory(engine)


def cmd_export(args: argparse.Namespace) -> int:
    from datetime import datetime

    from bot.exports.periods import PeriodError, parse_period
    from bot.exports.runner import export_filename, write_export

    settings = _load(args.config)
    setup_logging("WARNING", _secrets(settings))
    tz = settings.tz
    words = (
        [args.period]
        if args.period
        else ([args.date_from, args.date_to or args.date_from] if args.date_from else [])
    )
    try:
        period = parse_period(words, tz, datetime.now(tz).date())
    except PeriodError as exc:
        sys.stderr.write(f"时间段错误：{exc}\n")
        return 2
    output = args.output or export_filename(args.kind, args.format, period)

    async def run() -> int:
        engine, db = await _open_db(settings)
        try:
            with open(output, "wb") as out:  # noqa: ASYNC230 — a one-shot command, alone on its loop
                return await write_export(
                    db,
                    out,
                    kind=args.kind,
                    fmt=args.format,
                    period=period,
                    unit=settings.unit_name,
                    tz=tz,
                    title=settings.export.form_heading(settings.unit_name),
                )
        finally:
            await engine.dispose()

    count = asyncio.run(run())
    sys.stdout.write(f"已导出 {count} 条（{period.label}）到 {output}\n")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from pathlib import Path

    from bot.exports.chart import render_chart
    from bot.exports.periods import PeriodError, parse_report_period
    from bot.exports.report import report_filename, summary_lines
    from bot.exports.report_files import load_figures, report_bytes

    settings = _load(args.config)
    setup_logging("WARNING", _secrets(settings))
    tz, now = settings.tz, datetime.now(UTC)
    try:
        period = parse_report_period(args.period or "", tz, now.astimezone(tz).date())
    except PeriodError as exc:
        sys.stderr.write(f"时间错误：{exc}\n")
        return 2
    output = Path(args.output or report_filename(period))

    async def run():
        engine, db = await _open_db(settings)
        try:
            return await load_figures(
                db,
                period,
                unit=settings.unit_name,
                tz=tz,
                now=now,
                default_period_hours=settings.freshness.period_hours,
            )
        finally:
            await engine.dispose()

    figures = asyncio.run(run())
    output.write_bytes(report_bytes(figures, tz))
    written = [str(output)]
    if args.chart:
        Path(args.chart).write_bytes(render_chart(figures))
        written.append(args.chart)
    sys.stdout.write("\n".join(summary_lines(figures)) + f"\n已写入 {'、'.join(written)}\n")
    return 0


def cmd_verify_audit(args: argparse.Namespace) -> int:
    """The chain re-hashed; every printed record matches its entry; every checkpoint is still in it."""
    from storage.audit_repo import verify_audit_log, verify_checkpoints, verify_records
    from storage.db import reading

    settings = _load(args.config)
    setup_logging("WARNING", _secrets(settings))
    try:
        external = [
            *(_checkpoint(text) for text in args.checkpoint or ()),
            *_checkpoint_file(args.checkpoint_file or settings.audit.checkpoint_file),
        ]
    except ValueError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2

    async def run():
        engine, db = await _open_db(settings)
        try:
            async with reading(db)() as session:  # one snapshot; the running bot is not held up
                chain = await verify_audit_log(session=session)
                records = await verify_records(session=session) if chain.ok else []
                checkpoints = await verify_checkpoints(
                    session=session, external=external, key=settings.audit.key
                )
                return chain, records, checkpoints
        finally:
            await engine.dispose()

    chain, records, checkpoints = asyncio.run(run())
    if not chain.ok:
        sys.stdout.write(f"审计日志在第 {chain.first_broken_id} 条处不连续：{chain.reason}\n")
        return 1
    problems = [*records, *checkpoints]
    if problems:
        sys.stdout.write("".join(f"审计核验不通过：{p}\n" for p in problems[:20]))
        return 1
    witnessed = f"，{len(external)} 个外部检查点均在日志中" if external else ""
    sys.stdout.write(
        f"审计日志完整：共 {chain.checked} 条，哈希链连续，审核与校对记录与日志一致{witnessed}。\n"
    )
    return 0


def _checkpoint(text: str) -> tuple[int, str]:
    entry, _, digest = text.strip().partition(":")
    if not entry.isdigit() or len(digest) != 64:
        raise ValueError(f"检查点格式应为 条数:哈希（64 位），收到 {text!r}")
    return int(entry), digest


def _checkpoint_file(name: str) -> list[tuple[int, str]]:
    """Checkpoints written by the daily sweep: date, entry, hash, signature per line."""
    if not name:
        return []
    path = Path(name)
    if not path.exists():
        raise ValueError(f"检查点文件 {name} 不存在")
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1].isdigit():
            found.append((int(fields[1]), fields[2]))
    return found


def cmd_menu_sync(args: argparse.Namespace) -> int:
    """Set the app menu through menu/create, read it back with menu/get and list it."""
    import aiohttp

    from bot import views
    from bot.core.clock import SystemClock
    from bot.services.menu import app_menu, left_out_views
    from bot.wecom.client import WeComAPIError, WeComClient, WeComTransportError

    settings = _load(args.config)
    setup_logging("WARNING", _secrets(settings))

    async def run() -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            client = WeComClient.for_app(http, settings.wecom, SystemClock())
            await client.create_menu(app_menu(settings))
            return await client.get_menu()

    try:
        stored = asyncio.run(run())
    except WeComAPIError as exc:
        sys.stderr.write(views.menu_sync_failed(exc.errcode, exc.errmsg) + "\n")
        return 1
    except WeComTransportError as exc:
        sys.stderr.write(views.menu_sync_unreachable(str(exc)) + "\n")
        return 1
    sys.stdout.write(views.menu_synced(stored, left_out_views(settings)) + "\n")
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    """List stuck, failed and expired messages with their reasons; retry or discard one."""
    from datetime import UTC, datetime

    from bot import views
    from bot.wecom.outbox import OutboxDecisionError, discard_message, retry_message, stuck_messages

    settings = _load(args.config)
    setup_logging("WARNING", _secrets(settings))
    if args.discard is not None and not (args.reason and args.by):
        sys.stderr.write('--discard 需要 --reason "原因" 和 --by userid\n')
        return 2

    async def run() -> str:
        engine, db = await _open_db(settings)
        now = datetime.now(UTC)
        try:
            async with db() as session, session.begin():
                if args.retry is not None:
                    await retry_message(session, args.retry, now)
                    return views.outbox_retried(args.retry)
                if args.discard is not None:
                    await discard_message(session, args.discard, now, reason=args.reason, by=args.by)
                    return views.outbox_discarded(args.discard, args.by, args.reason)
                rows = await stuck_messages(session, now)
                return "\n".join(views.outbox_line(row) for row in rows) or views.outbox_none()
        finally:
            await engine.dispose()

    try:
        sys.stdout.write(asyncio.run(run()) + "\n")
    except OutboxDecisionError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


class UnreadableInputError(Exception):
    """The file to proofread could not be read as text; the message is the Chinese reason."""


def _proofread_text(name: str) -> str:
    """The text of a UTF-8 .txt, of a .docx (as the draft pages extract it) or of stdin ("-")."""
    label = "标准输入" if name == "-" else name
    if name == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = Path(name).read_bytes()
        except FileNotFoundError:
            raise UnreadableInputError(f"无法读取 {label}：文件不存在") from None
        except IsADirectoryError:
            raise UnreadableInputError(f"无法读取 {label}：这是一个目录，不是文件") from None
        except OSError as exc:
            raise UnreadableInputError(f"无法读取 {label}：{exc.strerror or exc}") from None
    if name.lower().endswith(".docx") or (name == "-" and data[:4] == b"PK\x03\x04"):
        from bot.documents.docx_html import DocumentConversionError, docx_to_html

        try:
            return docx_to_html(data).text
        except DocumentConversionError as exc:
            raise UnreadableInputError(f"无法读取 {label}：{exc.message}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableInputError(
            f"无法读取 {label}：不是 UTF-8 编码的文本（第 {exc.start + 1} 个字节起），请另存为 UTF-8 或 .docx"
        ) from None


def cmd_proofread(args: argparse.Namespace) -> int:
    """智能识错: one JSON object per finding per line; exit 1 only when the input is unreadable."""
    import json
    from dataclasses import asdict

    from bot.proofread import Lexicon, LexiconError, check

    try:
        lexicon = Lexicon.load(args.lexicon) if args.lexicon else None
    except LexiconError as exc:
        sys.stderr.write(exc.message + "\n")
        return 2
    try:
        text = _proofread_text(args.file)
    except UnreadableInputError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    findings = check(text, lexicon=lexicon)
    sys.stdout.write("".join(json.dumps(asdict(f), ensure_ascii=False) + "\n" for f in findings))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanshen", description="审校助手 WeCom bot")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the callback server")
    serve.add_argument("-c", "--config", default="config.toml")
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("-c", "--config", default="config.toml")
    check.add_argument(
        "--online",
        action="store_true",
        help="also try the credentials, the app's visible range and every userid against WeCom",
    )
    check.add_argument(
        "--send-test", action="store_true", help="with --online: send a test message to the admins"
    )
    check.set_defaults(func=cmd_check_config)
    demo = sub.add_parser("demo", help="walk a draft through 三审 on the built-in WeCom simulator")
    demo.add_argument("--database", default="", help="database URL (default: a fresh SQLite file)")
    demo.add_argument(
        "-c",
        "--config",
        default="",
        help="rehearse with this config's staff and chains (simulator and a temporary database)",
    )
    demo.add_argument("-v", "--verbose", action="store_true")
    demo.set_defaults(func=cmd_demo)
    sandbox = sub.add_parser(
        "sandbox", help="a training sandbox in the browser: a simulated phone per person of the config"
    )
    sandbox.add_argument("-c", "--config", default="config.toml")
    sandbox.add_argument("--port", type=int, default=8700, help="local port of the sandbox page")
    sandbox.set_defaults(func=cmd_sandbox)

    export = sub.add_parser("export", help="write the 保密审查表 or the 台账 for a period to a file")
    export.add_argument("-c", "--config", default="config.toml")
    export.add_argument("--period", help="YYYY-MM (default: this month)")
    export.add_argument("--from", dest="date_from", help="YYYY-MM-DD (with --to)")
    export.add_argument("--to", dest="date_to", help="YYYY-MM-DD, inclusive")
    export.add_argument("--kind", choices=("form", "ledger"), default="form")
    export.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    export.add_argument("-o", "--output", help="file to write (default: a name with the period)")
    export.set_defaults(func=cmd_export)

    report = sub.add_parser(
        "report", help="the figures of a quarter or a year (xlsx, optionally the chart as PNG)"
    )
    report.add_argument("period", nargs="?", help="2026Q4, 2026 or 2026-11 (default: this quarter)")
    report.add_argument("-c", "--config", default="config.toml")
    report.add_argument("-o", "--output", help="xlsx to write (default: 统计报表_<period>.xlsx)")
    report.add_argument("--chart", help="also write the chart picture (PNG) to this file")
    report.set_defaults(func=cmd_report)
    verify = sub.add_parser("verify-audit", help="re-hash the audit log and name the first broken entry")
    verify.add_argument("-c", "--config", default="config.toml")
    verify.add_argument(
        "--checkpoint", action="append", help="ENTRY:HASH kept outside the database (repeatable)"
    )
    verify.add_argument(
        "--checkpoint-file", help="the daily checkpoint file (default [audit] checkpoint_file)"
    )
    verify.set_defaults(func=cmd_verify_audit)
    outbox = sub.add_parser("outbox", help="stuck, failed and expired messages; retry or discard one")
    outbox.add_argument("-c", "--config", default="config.toml")
    outbox.add_argument("--retry", type=int, metavar="ID", help="queue message ID again now")
    outbox.add_argument("--discard", type=int, metavar="ID", help="give message ID up (audited)")
    outbox.add_argument("--reason", default="", help="why it is discarded (with --discard)")
    outbox.add_argument("--by", default="", help="your userid (with --discard)")
    outbox.set_defaults(func=cmd_outbox)
    proofread = sub.add_parser("proofread", help="智能识错: a .txt or .docx's findings, JSON lines")
    proofread.add_argument("file", help="a UTF-8 .txt, a .docx, or - for stdin")
    proofread.add_argument(
        "--lexicon",
        metavar="DIR",
        help="the unit's lists: wording.tsv, ads.tsv, allow.txt, domains.txt, leaders.tsv or "
        ".xlsx (any of them)",
    )
    proofread.set_defaults(func=cmd_proofread)
    menu = sub.add_parser("menu", help="the app's custom menu in WeCom")
    menu_sub = menu.add_subparsers(dest="menu_command", required=True)
    sync = menu_sub.add_parser("sync", help="set the app menu through the API and print it")
    sync.add_argument("-c", "--config", default="config.toml")
    sync.set_defaults(func=cmd_menu_sync)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))
