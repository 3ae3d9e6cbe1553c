"""Several instances started at the same instant on an empty database all come up, and the rows
start-up writes (staff, audit head, roster shifts, accounts and their imported posts) end up
exactly once, the same however many started and however often."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import text

from bot.app import create_app
from bot.cli.stack import stack_settings
from bot.core.clock import FrozenClock
from bot.core.config import Settings
from bot.core.event_loop import new_event_loop
from bot.rules.audit_chain import GENESIS
from storage.db import make_engine

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent
ROSTER = "日期,主班,副班,带班领导\n2026-11-24,zhaoli,wangxm,liuzr\n2026-11-25,wangxm,,liuzr\n"
ACCOUNTS = (
    "name,platform,unit,owners,period_hours,last_post\n"
    "本市发布,微信公众号,办公室,wangxm|zhaoli,,2026-11-20 20:00\n"
    "政务微博,微博,,zhaoli,72,\n"
    "示范发布,微信公众号,,zhaoli,,2026-11-22 09:30\n"  # also configured below
)


def overrides(folder: Path) -> dict[str, Any]:
    (folder / "roster.csv").write_text(ROSTER, encoding="utf-8")
    (folder / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    return {
        "duty": {
            "rotation": ["zhaoli", "wangxm"],
            "leader_rotation": ["liuzr"],
            "rotation_start": "2026-11-23",
            "roster_file": str(folder / "roster.csv"),
        },
        "freshness": {
            "accounts": [
                {"name": "示范发布", "platform": "微信公众号", "owners": ["zhaoli"]},
                {"name": "门户网站·通知公告", "platform": "网站", "owners": ["chenfb"]},
            ],
            "accounts_file": str(folder / "accounts.csv"),
        },
    }


async def start_together(settings: Settings, count: int) -> list[BaseException | None]:
    """Run `count` instances' start-up at once; each is stopped again once all have tried."""
    runners = [
        web.AppRunner(create_app(settings, clock=FrozenClock(NOW), run_sender=False)) for _ in range(count)
    ]
    results = await asyncio.gather(*(runner.setup() for runner in runners), return_exceptions=True)
    for runner, result in zip(runners, results, strict=True):
        if result is None:
            await runner.cleanup()
    return [r if isinstance(r, BaseException) else None for r in results]


async def rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = make_engine(url)
    queries = {
        "staff": "SELECT userid, name, roles, active FROM staff ORDER BY userid",
        "audithead": "SELECT id, last_id, last_hash FROM audithead ORDER BY id",
        "auditentry": "SELECT count(*) FROM auditentry",
        "shift": "SELECT role, userid, source FROM shift ORDER BY start_at, role",
        "account": "SELECT name, platform, owners, period_hours FROM account ORDER BY name",
        "accountpost": "SELECT a.name, p.recorded_by FROM accountpost p "
        "JOIN account a ON a.id = p.account_id ORDER BY a.name",
    }
    try:
        async with engine.connect() as conn:
            return {
                table: [tuple(r) for r in (await conn.execute(text(sql))).all()]
                for table, sql in queries.items()
            }
    finally:
        await engine.dispose()


EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "staff": [
        ("chenfb", "陈发布", "publisher,admin", True),
        ("liuzr", "刘主任", "leader", True),
        ("sunkz", "孙科长", "reviewer", True),
        ("wangxm", "王小明", "collector,duty", True),
        ("zhangkz", "张科长", "reviewer", True),
        ("zhaoli", "赵丽", "collector,duty", True),
    ],
    "audithead": [(1, 0, GENESIS)],
    "auditentry": [(0,)],
    "shift": [
        ("deputy", "wangxm", "import"),
        ("leader", "liuzr", "import"),
        ("primary", "zhaoli", "import"),
        ("leader", "liuzr", "import"),
        ("primary", "wangxm", "import"),
    ],
    "account": [
        ("政务微博", "微博", "zhaoli", 72),
        ("本市发布", "微信公众号", "wangxm|zhaoli", None),
        ("示范发布", "微信公众号", "zhaoli", None),
        ("门户网站·通知公告", "网站", "chenfb", None),
    ],
    "accountpost": [("本市发布", "import"), ("示范发布", "import")],
}


def plain(table: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Sorted, with booleans as SQLite returns them."""
    return sorted(tuple(int(v) if isinstance(v, bool) else v for v in row) for row in table)


def same_rows(found: dict[str, list[tuple[Any, ...]]]) -> None:
    for table, expected in EXPECTED.items():
        assert plain(found[table]) == plain(expected), table


async def test_five_instances_start_together_on_a_new_postgresql_database(tmp_path: Path) -> None:
    from tests.conftest import fresh_postgres

    for _ in range(5):  # the race showed in about half the runs before start-up was serialised
        async with fresh_postgres() as url:
            settings = stack_settings(url, overrides(tmp_path))
            failures = [f for f in await start_together(settings, 5) if f is not None]
            assert not failures, failures
            same_rows(await rows(url))
            failures = [f for f in await start_together(settings, 5) if f is not None]
            assert not failures, failures
            same_rows(await rows(url))  # a restart of all of them changes nothing


# --- SQLite: separate processes on one file (SQLite's locks are per process)


def start_in_process(url: str, folder: str, ready: str, go: str) -> None:
    """Entry point of one child process: once imported, say so, wait for the word, start one
    instance and stop it (a non-zero exit with the traceback when start-up fails)."""
    settings = stack_settings(url, overrides(Path(folder)))
    Path(ready).touch()
    while not Path(go).exists():
        time.sleep(0.002)
    failures = asyncio.run(start_together(settings, 1))
    if failures[0] is not None:
        raise failures[0]


def test_two_processes_start_together_on_a_new_sqlite_file(tmp_path: Path) -> None:
    code = "import sys; from tests.test_startup import start_in_process as s; s(*sys.argv[1:])"
    for round_ in range(3):
        url = f"sqlite+aiosqlite:///{tmp_path}/r{round_}/sanshen.db"
        for start in range(2):  # both on the new file, then both again on the existing one
            go = tmp_path / f"go-{round_}-{start}"
            ready = [tmp_path / f"ready-{round_}-{start}-{n}" for n in range(2)]
            argv = [sys.executable, "-c", code, url, str(tmp_path)]
            children = [
                subprocess.Popen(
                    [*argv, str(r), str(go)],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for r in ready
            ]
            deadline = time.monotonic() + 60
            while not all(r.exists() for r in ready) and time.monotonic() < deadline:
                if any(child.poll() is not None for child in children):
                    break
                time.sleep(0.01)
            go.touch()
            outputs = [child.communicate(timeout=120) for child in children]
            for child, (_out, err) in zip(children, outputs, strict=True):
                assert child.returncode == 0, err[-3000:]
            same_rows(asyncio.run(rows(url)))


def test_expected_rows_are_what_one_instance_writes(tmp_path: Path) -> None:
    """The expectation above, checked against a single start (so it is not a shared mistake)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/one.db"
    settings = stack_settings(url, overrides(tmp_path))
    assert asyncio.run(start_together(settings, 1)) == [None]
    same_rows(asyncio.run(rows(url)))


async def test_a_server_keeps_its_start_up_heap_out_of_full_collections(tmp_path: Path) -> None:
    """`serve` freezes what start-up built (a full collection walked it all: 80–140 ms with
    every request waiting); an app built without asking (tests build hundreds) freezes nothing."""
    settings = stack_settings(f"sqlite+aiosqlite:///{tmp_path}/heap.db", {})
    gc.unfreeze()
    plain_runner = web.AppRunner(create_app(settings, clock=FrozenClock(NOW), run_sender=False))
    await plain_runner.setup()
    await plain_runner.cleanup()
    assert gc.get_freeze_count() == 0
    runner = web.AppRunner(create_app(settings, clock=FrozenClock(NOW), run_sender=False, freeze_heap=True))
    try:
        await runner.setup()
        assert gc.get_freeze_count() > 10_000  # modules, settings, compiled statements …
    finally:
        await runner.cleanup()
        gc.unfreeze()


def test_serve_runs_on_uvloop_and_a_tap_goes_through_on_it(tmp_path: Path) -> None:
    """`serve`'s loop is uvloop's (a dependency wherever it builds); the bot's parts that touch
    the loop (the inline SQLite writer, greenlets, the checkpoint thread, the outbox) work on it."""
    import uvloop

    from bot.cli.people import button_key, current_card, say
    from bot.cli.stack import running_stack

    loop = new_event_loop()
    assert isinstance(loop, uvloop.Loop)
    clock = FrozenClock(NOW)
    settings = stack_settings(f"sqlite+aiosqlite:///{tmp_path}/uv.db", {})

    async def submit_and_approve() -> list[tuple[Any, ...]]:
        async with running_stack(settings, clock) as stack:
            await say(
                stack, "wangxm", "/submit 通知\n来源：本机关制发\n公开：主动公开\n平台：政府网站\n正文。"
            )
            await stack.drain()
            card = next(d for d in stack.sim.inbox("wangxm") if d.msgtype == "template_card")
            task_id = card.payload["template_card"]["task_id"]
            result = await stack.sim.click(
                "wangxm", task_id, button_key(current_card(stack, "wangxm", card), "同意")
            )
            assert result.status == 200
            await stack.drain()
            async with stack.db() as session:
                found = await session.exec(text("SELECT stage, reviewer_userid, decision FROM stagedecision"))  # type: ignore[call-overload]
                return [tuple(row) for row in found.all()]

    try:
        assert loop.run_until_complete(submit_and_approve()) == [(1, "wangxm", "approve")]
    finally:
        loop.close()
