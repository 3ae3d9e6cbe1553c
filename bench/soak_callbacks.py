"""Callback soak: the bot's memory stays flat over many callbacks and comes back down when idle.

Run: .venv/bin/python -m bench.soak_callbacks [--callbacks 10000] [--every 1000] [--database URL]
     [--history 30000] [--export-every 80] [--keep-record]; --trace: where growth was allocated

Starts the real stack (bot and WeCom simulator on loopback HTTP, bot.cli.stack) on a new SQLite
file (or --database, which should be empty) holding `--history` decisions of the year
(bench_export's records), and drives `--callbacks` encrypted callbacks through the callback URL
in rounds of 13 that people make: a /submit with a distinct title, WeCom re-sending it, the
三审 taps 同意 on the real cards (one tap re-sent), a tap on a card that has moved on, then six
people at the same moment (concurrent callbacks): /help, /status, /pending, an unknown command,
a near-miss command, opening the app. Every 80 rounds (--export-every) the admin asks for the
year's 台账 (/export), which the sender builds and uploads. The clock (FrozenClock) moves 5 s per callback
and the scheduler sweeps every 100 callbacks.

RSS (VmRSS) and SQLite's own heap (page caches) are printed before and after a warm-up round
(every path once, the export's too: imports and first queries are not growth), every `--every`
callbacks, after an idle hour (the clock moves on a minute at a time and the sweeps run,
gc.collect), then the growth from the warm start. The simulator runs in the same process and
records every delivery, card, upload and API call; that record is the harness, not the bot, so
it is forgotten after every round (WeComSimulator.forget_history; --keep-record keeps it, to see
what it adds). --trace compares tracemalloc snapshots from the warm start to the idle point,
split by traceback into the harness (a frame in bot/simulator/, bench/ or bot/cli/people.py)
and the bot (everything else).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import linecache
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.bench_export import populate
from bot.cli.people import active_card, forged_tap, say, tap
from bot.cli.stack import Stack, running_stack, stack_settings
from bot.core.clock import FrozenClock
from storage.db import init_models, make_engine, make_session_factory, sqlite_heap_bytes

START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 Asia/Shanghai
STEP_SECONDS = 5
SWEEP_EVERY = 100
IDLE_MINUTES = 60
PEOPLE = ("zhaoli", "zhangkz", "sunkz", "liuzr", "chenfb", "wangxm")
HARNESS = ("/bot/simulator/", "/bench/", "/bot/cli/people.py")
META = "来源：本机关制发\n公开：主动公开\n平台：政府网站\n"


def rss_mb() -> float:
    """This process's resident set size (VmRSS in /proc/self/status), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def sqlite_mb() -> str:
    """SQLite's own heap (every connection's page cache), or '-' when it cannot be read."""
    used = sqlite_heap_bytes()
    return "-" if used is None else f"{used / 2**20:.1f}"


@dataclass
class Soak:
    """The callbacks of one run, counted as they reach the bot."""

    stack: Stack
    clock: FrozenClock
    sent: int = 0
    rounds: int = 0
    keep_record: bool = False  # --keep-record: let the simulator's record grow (see the docstring)
    export_every: int = 80  # rounds
    seen: dict[str, int] = field(default_factory=dict)
    sweep_due: bool = False

    async def callback(self, kind: str, action: Callable[[], Awaitable[Any]]) -> None:
        """One callback: the clock moves on, the person acts, the replies are delivered."""
        self.clock.advance(seconds=STEP_SECONDS)
        await action()
        self.count(kind)

    def count(self, kind: str) -> None:
        self.sent += 1
        self.seen[kind] = self.seen.get(kind, 0) + 1
        if self.sent % SWEEP_EVERY == 0:
            self.sweep_due = True

    async def resend(self) -> None:
        """WeCom re-sends the previous callback byte for byte; the bot must not apply it twice."""
        result = await self.stack.sim.resend_last()
        if result.status != 200:
            raise RuntimeError(f"re-sent callback answered {result}")
        await self.stack.drain()

    async def one_round(self) -> None:
        """13 callbacks: a draft through 三审 with duplicates and a stale tap, then six people
        typing at the same moment; every `export_every` rounds one more, the admin's /export."""
        stack, n = self.stack, self.rounds
        if self.sweep_due:
            self.sweep_due = False
            await stack.sweep()
        await self.callback("submit", lambda: say(stack, "wangxm", f"/submit 第{n}号通知\n{META}正文 {n}"))
        await self.callback("duplicate", self.resend)
        await self.callback("card tap", lambda: tap(stack, "wangxm", "同意"))
        second = active_card(stack, "zhangkz").payload["template_card"]
        await self.callback("card tap", lambda: tap(stack, "zhangkz", "同意"))
        await self.callback("duplicate", self.resend)
        await self.callback("card tap", lambda: tap(stack, "liuzr", "同意"))
        await self.callback("stale card tap", lambda: forged_tap(stack, "sunkz", second, "同意"))
        chat = [
            ("/help", lambda user: stack.sim.send_text(user, "/help")),
            ("/status", lambda user: stack.sim.send_text(user, "/status")),
            ("/pending", lambda user: stack.sim.send_text(user, "/pending")),
            ("unknown command", lambda user: stack.sim.send_text(user, f"/nosuch{n}")),
            ("unknown command", lambda user: stack.sim.send_text(user, "/stauts")),
            ("enter app", lambda user: stack.sim.enter_agent(user)),
        ]
        self.clock.advance(seconds=STEP_SECONDS)
        people = PEOPLE[n % len(PEOPLE) :] + PEOPLE[: n % len(PEOPLE)]
        results = await asyncio.gather(*(act(user) for (_, act), user in zip(chat, people, strict=True)))
        if any(result.status != 200 for result in results):
            raise RuntimeError(f"a chat callback was refused: {results}")
        await stack.drain()
        for kind, _ in chat:
            self.count(kind)
        if n % self.export_every == self.export_every - 1:
            await self.callback("/export", lambda: say(stack, "chenfb", "/export 2026-01-01 2026-12-31 台账"))
        if not self.keep_record:
            stack.sim.forget_history()  # the harness's record of this round (see the docstring)
        self.rounds += 1

    async def idle(self) -> None:
        """An hour with nobody writing: the scheduler sweeps once a minute."""
        for _ in range(IDLE_MINUTES):
            self.clock.advance(minutes=1)
            await self.stack.sweep()
        if not self.keep_record:
            self.stack.sim.forget_history()


def top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, limit: int = 8) -> None:
    """The traced growth by traceback, split into the harness and the bot."""
    groups: dict[str, list[tracemalloc.StatisticDiff]] = {"bot": [], "harness": []}
    for stat in after.compare_to(before, "traceback"):
        harness = any(marker in frame.filename for frame in stat.traceback for marker in HARNESS)
        groups["harness" if harness else "bot"].append(stat)
    for name, group in groups.items():
        total, blocks = sum(s.size_diff for s in group), sum(s.count_diff for s in group)
        print(f"\ntracemalloc growth, {name}: {total / 1e6:+.2f} MB in {blocks:+d} blocks")
        for stat in sorted(group, key=lambda s: s.size_diff, reverse=True)[:limit]:
            if stat.size_diff <= 0:
                break
            print(f"  {stat.size_diff / 1e6:+.2f} MB {stat.count_diff:+d} blocks")
            ours = [f for f in stat.traceback if "/.venv/" not in f.filename]
            for frame in (ours or list(stat.traceback))[-3:]:
                where = frame.filename.split("/main/")[-1].split("site-packages/")[-1]
                print(
                    f"      {where}:{frame.lineno}  {linecache.getline(frame.filename, frame.lineno).strip()}"
                )


async def prefill(url: str, decisions: int) -> None:
    """The year's records the exports read (bench_export's drafts, decisions and audit chain)."""
    engine = make_engine(url)
    try:
        await init_models(engine)
        await populate(make_session_factory(engine), decisions)
    finally:
        await engine.dispose()


async def soak(
    callbacks: int,
    every: int,
    database: str,
    history: int,
    *,
    export_every: int,
    trace: bool,
    keep_record: bool,
) -> None:
    with tempfile.TemporaryDirectory(prefix="sanshen-soak-") as folder:
        url = database or f"sqlite+aiosqlite:///{Path(folder) / 'soak.db'}"
        if history:
            await prefill(url, history)
        clock = FrozenClock(START)
        async with running_stack(stack_settings(url), clock) as stack:
            cold = rss_mb()
            run = Soak(stack, clock, keep_record=keep_record, export_every=export_every)
            await run.one_round()  # warm-up: every path once (imports, first queries) …
            await say(stack, "chenfb", "/export 2026-01-01 2026-12-31 台账")  # … the export's too
            stack.sim.forget_history()
            gc.collect()
            if trace:
                tracemalloc.start(15)
            before = tracemalloc.take_snapshot() if trace else None
            run.sent, run.seen = 0, {}
            start = rss_mb()
            print(
                f"Callback soak: {callbacks} callbacks, {url.split(':', 1)[0]}, "
                f"{history} decisions of history, /export every {export_every} rounds, RSS every {every}\n"
            )
            print(f"{'callbacks':>10} {'RSS MB':>8} {'SQLite MB':>10} {'seconds':>8}")
            print(f"{'started':>10} {cold:>8.1f}")
            print(f"{0:>10} {start:>8.1f} {sqlite_mb():>10} {0:>8.1f}", flush=True)
            began = time.perf_counter()
            reported = 0
            while run.sent < callbacks:
                await run.one_round()
                if run.sent - reported >= every or run.sent >= callbacks:
                    reported = run.sent
                    seconds = time.perf_counter() - began
                    print(f"{run.sent:>10} {rss_mb():>8.1f} {sqlite_mb():>10} {seconds:>8.1f}", flush=True)
            loaded = rss_mb()
            await run.idle()
            gc.collect()
            idle = rss_mb()
            print(f"{'idle':>10} {idle:>8.1f} {sqlite_mb():>10}")
            print("\ncallbacks by kind: " + ", ".join(f"{k} {v}" for k, v in run.seen.items()))
            print(
                f"RSS start {start:.1f} MB (after the warm-up round; {cold:.1f} MB before it), "
                f"after {run.sent} callbacks {loaded:.1f} MB, after idle {idle:.1f} MB: "
                f"growth {idle - start:+.1f} MB, ratio {idle / start:.2f}"
            )
            if before is not None:
                top_growth(before, tracemalloc.take_snapshot())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1_000)
    parser.add_argument("--database", default="", help="an empty database's URL (default: a new SQLite file)")
    parser.add_argument("--history", type=int, default=30_000, help="decisions of the year already stored")
    parser.add_argument("--export-every", type=int, default=80, help="rounds between two exports")
    parser.add_argument("--trace", action="store_true", help="tracemalloc: where the growth was allocated")
    parser.add_argument(
        "--keep-record", action="store_true", help="never forget the simulator's record (harness growth)"
    )
    args = parser.parse_args()
    asyncio.run(
        soak(
            args.callbacks,
            args.every,
            args.database,
            args.history,
            export_every=args.export_every,
            trace=args.trace,
            keep_record=args.keep_record,
        )
    )


if __name__ == "__main__":
    main()
