"""What one card tap costs in-process: Python function calls, SQL statements, CPU — deterministic counts for #13.

Timings on a shared 2-core machine wander by ±20 % from run to run; the number of Python function
calls a tap makes (cProfile's count) and its SQL statements do not, so a change to the tap path
can be judged by them in seconds. The bot runs in this process on the built-in simulator and a
new SQLite file (or `--database-url`), with an injected clock:

    .venv/bin/python -m bench.tap_calls                 # 40 drafts, 同意 on each 一审 card
    .venv/bin/python -m bench.tap_calls --statements    # and the SQL of one tap and its sending
    .venv/bin/python -m bench.tap_calls --profile /tmp/p  # and /tmp/p.tap, /tmp/p.sending for pstats
    .venv/bin/python -m bench.tap_calls --together 8    # 8 taps at once: one group commit (per tap)
    .venv/bin/python -m bench.tap_calls --texts         # /help texts instead (as many as drafts)
    .venv/bin/python -m bench.tap_calls --cpu           # CPU a tap without the profiler (and on
                                                        # PostgreSQL the server's, from /proc)

"tap" is the callback request (decrypt, the decision, its commit); "sending" is the outbox pass
that delivers the four messages the tap caused, including the simulator's side of those calls.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.cli.people import button_key, current_card, say
from bot.cli.stack import DEMO_STAFF, running_stack, stack_settings
from bot.core.clock import FrozenClock
from storage import direct

SUBMISSION = "/submit 通知{n}\n来源：本机关制发\n公开：主动公开\n平台：政府网站\n正文第{n}号。"
EDITOR = "wangxm"  # submits, and holds the 一审 card of what they submit


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by this machine's PostgreSQL processes alive now (Linux /proc;
    0 elsewhere). The bot's connections stay open, so a difference across taps is theirs and
    the server's background work."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split()
        except OSError:
            continue
        if "postgres" in fields[1]:
            ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def staff_of(size: int) -> list[dict[str, Any]]:
    """The demo's people, then people without a role up to `size` (a unit's whole address book: what is
    looked up per person costs more with more people)."""
    extra = [
        {"userid": f"staff{n:04d}", "name": f"职员{n:04d}", "roles": []}
        for n in range(max(0, size - len(DEMO_STAFF)))
    ]
    return [*DEMO_STAFF, *extra]


async def measure(
    drafts: int,
    database_url: str,
    show_statements: bool,
    profile: str | None = None,
    staff: int = 0,
    together: int = 1,
    texts: bool = False,
    profiled: bool = True,
) -> None:
    clock = FrozenClock(datetime(2026, 5, 11, 2, 0, tzinfo=UTC))
    settings_staff = staff_of(staff)
    settings = stack_settings(database_url, {"staff": settings_staff})
    async with running_stack(settings, clock) as stack:
        for n in range(drafts):
            await say(stack, EDITOR, SUBMISSION.format(n=n))
            clock.advance(seconds=10)  # within the editor's 25 messages a minute
        statements: list[str] = []
        engine = stack.db.kw["bind"].sync_engine

        def seen(sql: str) -> None:
            statements.append(" ".join(sql.split())[:120])

        # SQLAlchemy's statements and those storage.direct runs on the driver's connection.
        event.listen(engine, "before_cursor_execute", lambda _c, _cur, sql, *_: seen(sql))
        with direct.observing(seen):
            cards = [
                d
                for d in stack.sim.inbox(EDITOR)
                if d.msgtype == "template_card"
                and stack.sim.card(d.payload["template_card"]["task_id"]).is_active_for(EDITOR)
            ]
            tap_profile, send_profile = cProfile.Profile(), cProfile.Profile()
            tap_cpu = send_cpu = server_cpu = 0.0
            postgres = database_url.startswith("postgresql")
            tap_sql: list[str] = []
            send_sql: list[str] = []
            batches = [cards[i : i + together] for i in range(0, len(cards), together)]
            everyone = [member["userid"] for member in settings_staff]
            for index, batch in enumerate(batches):
                first_reader = index * together
                readers = [everyone[(first_reader + n) % len(everyone)] for n in range(len(batch))]
                clicks = [
                    stack.sim.send_text(reader, "/help")
                    if texts
                    else stack.sim.click(
                        EDITOR,
                        delivered.payload["template_card"]["task_id"],
                        button_key(current_card(stack, EDITOR, delivered), "同意"),
                    )
                    for reader, delivered in zip(readers, batch, strict=False)
                ]
                first = len(statements)
                server_started = postgres_cpu_seconds() if postgres else 0.0
                started = time.process_time()
                if profiled:
                    tap_profile.enable()
                results = await asyncio.gather(*clicks)  # arriving together: one group commit
                tap_profile.disable()
                tap_cpu += time.process_time() - started
                if postgres:
                    server_cpu += postgres_cpu_seconds() - server_started
                for result in results:
                    if result.status != 200:
                        raise SystemExit(f"the bot answered a tap with {result}")
                clock.advance(seconds=10)
                middle = len(statements)
                started = time.process_time()
                if profiled:
                    send_profile.enable()
                await stack.drain()
                send_profile.disable()
                send_cpu += time.process_time() - started
                if index == 1:  # the first batch warms caches
                    tap_sql, send_sql = statements[first:middle], statements[middle:]
        taps = len(cards)
        what = "/help texts" if texts else "taps"
        print(f"{taps} {what} on {database_url.split(':')[0]}, {together} at a time")
        cpu_note = "with the profiler" if profiled else "no profiler"

        def calls(profile: cProfile.Profile) -> str:
            return f"{pstats.Stats(profile).total_calls / taps:8.0f}" if profiled else f"{'—':>8s}"

        print(
            f"{'/help:' if texts else 'tap:':9s}{calls(tap_profile)} calls, "
            f"{len(tap_sql) / together:5.1f} statements, {tap_cpu / taps * 1000:6.2f} ms CPU ({cpu_note})"
            + (f", PostgreSQL {server_cpu / taps * 1000:.2f} ms" if postgres else "")
        )
        print(
            f"sending: {calls(send_profile)} calls, "
            f"{len(send_sql) / together:5.1f} statements, {send_cpu / taps * 1000:6.2f} ms CPU ({cpu_note})"
        )
        if profile:
            tap_profile.dump_stats(f"{profile}.tap")
            send_profile.dump_stats(f"{profile}.sending")
        if show_statements:
            for title, listed in (("tap", tap_sql), ("sending", send_sql)):
                print(f"\n{title}:")
                for sql in listed:
                    print("  ", sql)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=40)
    parser.add_argument("--database-url", help="default: a new SQLite file")
    parser.add_argument(
        "--staff",
        type=int,
        default=644,
        help="people on the staff list (default 644, as bench.bench_callback)",
    )
    parser.add_argument(
        "--together",
        type=int,
        default=1,
        help="taps sent at once, applied in one group commit (default 1); figures are per tap",
    )
    parser.add_argument("--statements", action="store_true", help="list the SQL of one tap and its sending")
    parser.add_argument(
        "--texts", action="store_true", help="measure /help texts (one per person) instead of taps"
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="no profiler: CPU a tap as it runs (varies up to ±10 %% from run to run; the counts do not)",
    )
    parser.add_argument(
        "--profile", metavar="PREFIX", help="keep the profiles as PREFIX.tap and PREFIX.sending"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sanshen-tap-calls-") as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'taps.db'}"
        asyncio.run(
            measure(
                args.drafts,
                url,
                args.statements,
                args.profile,
                args.staff,
                args.together,
                args.texts,
                profiled=not args.cpu,
            )
        )


if __name__ == "__main__":
    main()
