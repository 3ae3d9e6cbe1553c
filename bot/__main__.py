"""Command line: `sanshen serve -c config.toml`, `sanshen demo`, `sanshen check-config`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from bot.config import ConfigError, Settings, load_settings
from bot.log import setup_logging

log = logging.getLogger("sanshen")


def _load(path: str) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        sys.stderr.write(f"配置错误 {exc}\n")
        raise SystemExit(2) from None


def _secrets(settings: Settings) -> list[str]:
    return [settings.wecom.secret, settings.wecom.token, settings.wecom.encoding_aes_key]


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app import create_app

    settings = _load(args.config)
    setup_logging(settings.log_level, _secrets(settings))
    log.info(
        "serving %s on %s:%s", settings.server.callback_path, settings.server.host, settings.server.port
    )
    web.run_app(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        print=None,
        access_log=None,
    )
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    sys.stdout.write(
        f"配置有效：{settings.unit_name}，{len(settings.staff)} 名人员，"
        f"{len(settings.chains)} 条审核链，数据库 {settings.database.url.split('://')[0]}\n"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    setup_logging("WARNING" if not args.verbose else "INFO")
    return asyncio.run(run_demo(database_url=args.database))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sanshen", description="审校助手 WeCom bot")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the callback server")
    serve.add_argument("-c", "--config", default="config.toml")
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("-c", "--config", default="config.toml")
    check.set_defaults(func=cmd_check_config)
    demo = sub.add_parser("demo", help="walk a draft through 三审 on the built-in WeCom simulator")
    demo.add_argument("--database", default="", help="database URL (default: a fresh SQLite file)")
    demo.add_argument("-v", "--verbose", action="store_true")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
