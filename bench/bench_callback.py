"""Callback throughput (#13): `bot serve` per callback path against a decrypt-and-parse floor.

    .venv/bin/python -m bench.bench_callback                        # a new SQLite file
    .venv/bin/python -m bench.bench_callback --database postgresql  # a fresh PostgreSQL database
    .venv/bin/python -m bench.bench_callback --quick                # small numbers: a smoke test
    .venv/bin/python -m bench.bench_callback --profile bot.prof     # the bot under cProfile

What runs: the real server, `python -m bot serve`, as a child process with a generated config
(bench.chaos's helpers), on a real database: a new SQLite file in a temporary folder, or with
`--database postgresql` a uniquely named database on 127.0.0.1:5432 (bench.chaos.fresh_database,
dropped afterwards). The WeCom simulator is served on a loopback port as the WeCom API; the
bot's outbox sender and scheduler run as shipped, so the messages a callback queues are sent
while the load goes on, as in production (the sender gives way to callbacks being applied,
for at most 0.25 s a message: see bot.wecom.outbox.GIVE_WAY_SECONDS). Beside it, the floor: a bare aiohttp app in a process
of its own that only checks the signature, decrypts with wechatpy's WeChatCrypto and parses
with bot.wecom.events.parse_event, then answers 200 (what every callback costs before the bot
does anything).

The callbacks are composed by the simulator itself (WeComSimulator.send_text / click, with its
HTTP post swapped for a recorder), so each body is what WeCom would post: encrypted and signed,
a fresh timestamp and a random nonce; texts carry distinct MsgIds, taps a response_code the
simulator issued (the bot's card update then succeeds). The load generator is an aiohttp client
holding `--connections` keep-alive connections; each request's latency is taken client-side
(time.perf_counter around the POST and the read of the answer). A round's bodies are composed
when it starts; any older than 120 s when their path starts (a very long run) are composed
again, for the same cards and MsgIds, since the bot refuses timestamps 300 s off.

Paths, one table row each:
  floor            the floor process, fed the same bodies as the round's taps and /help texts;
                   every other row's requests/s is also given as a multiple of it (× floor).
  card tap 同意     each request taps 同意 on the 一审 card of a distinct draft (real cards, taken
                   from the simulator's inboxes), which moves it to 二审. Afterwards the database
                   must hold exactly one stage-1 decision for each tapped draft.
  /help text       distinct "/help" messages (distinct MsgIds); each must leave its dedupe key.
  re-sent dup.     one /help body, applied once before the timing, then posted again and again
                   (WeCom's re-send): every answer must be 200 and the bot must queue nothing
                   more (one reply per duplicated body).

Set-up, before any timing: `rounds × taps` drafts (plus the warm-up's) are submitted by chat
(/submit callbacks over the same connections), then the bench waits until every 一审 card has
reached its submitter in the simulator and the outbox has nothing left to send; its timings are
printed. The chains are bench.chaos's (三审 without 校, so 同意 at 一审 opens 二审, one reviewer
per category). Editors and /help senders are as many as it takes for nobody to get more than
24 messages in the whole run: the bot paces at 25 a minute per member, and a member's backlog
would make the sender re-schedule rows instead of measuring callbacks. The three 二审 reviewers
cannot be spread that way (a stage's assignees are fixed per category): each tap queues them a
card and a preview, which wait for their pace; that backlog is reported.

Rounds (`--rounds`, default 3) are interleaved: floor, tap, /help, duplicate, then the next
round. Before each path the bench waits until the outbox has no row due (the sending the
previous path caused; its duration is the "outbox lag" in the per-round table), so a path's
timing does not carry the previous one's deliveries; the reviewers' paced rows stay queued and
their bursts (once a minute) may fall into any path. A warm-up round of `--connections` (at
least 32) requests per path comes first and is not reported. The main table shows, per path,
the round whose requests/s is the median (the lower middle one for an even count) with that
round's p50/p99/max; non-200 and recorded / expected are summed over all timed rounds. The
per-round table shows every round with the CPU use of the bot, the floor and this process (load
generator and simulator together) over the path's wall time, read from /proc (10 ms ticks: the
short paths of --quick read coarsely), and the serving process's CPU a request, also as a
multiple of the floor's in the same round: on a machine whose speed varies from minute to
minute (a shared host) that ratio moves far less than requests/s do. A last line sums up the bot's log: events by outcome
(card:rv, command:help, duplicate …) and its WARNING and ERROR lines.

Pinning: with 2 CPUs or more, the bot and the floor run on CPU 1 and this process (load
generator and simulator) on CPU 0 (os.sched_setaffinity); PostgreSQL's own processes are not
ours and stay unpinned. The exit status is 1 when any answer was not 200, a count in
"recorded / expected" differs, the bot logged an ERROR, or the outbox did not settle: still rows
due after 600 s (or a second per request), or stopped, with rows due and none sent for 60 s
(then the remaining paths run without waiting for it, and the problem says so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import itertools
import math
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import xmltodict
from aiohttp import web
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, select
from wechatpy.work.crypto import WeChatCrypto
from yarl import URL

from bench.chaos import (
    AGENT_ID,
    CATEGORIES,
    CORP_ID,
    ROOT,
    Instance,
    chains,
    free_port,
    fresh_database,
    staff,
    toml_value,
)
from bot.cli.people import button_key
from bot.cli.stack import random_aes_key
from bot.core.clock import SystemClock
from bot.core.config import Settings, load_settings, settings_from_mapping
from bot.core.event_loop import new_event_loop
from bot.simulator import CallbackResult, WeComSimulator
from bot.simulator.wire import serve
from bot.wecom.callback import expected_signature
from bot.wecom.events import parse_event
from storage.db import make_session_factory
from storage.models import ApprovalCard, OutboxMessage, ProcessedCallback, StageDecision

BUDGET = 24  # messages one member gets in the whole run (the bot paces at 25 a minute)
PER_DRAFT = 4  # to its submitter: the receipt, the 一审 preview and card, "passed 一审" at the tap
STALE_AFTER = 120.0  # seconds: bodies older than this are composed again (the bot allows 300)
QUIET_WITHIN = 600.0  # longest wait for the outbox to have nothing due (or 1 s per request)
STALL_AFTER = 60.0  # seconds with rows due and none sent: the outbox has stopped
FLOOR = "floor: aiohttp + wechatpy decrypt + parse"
TAP = "card tap 同意"
HELP = "/help text"
DUP = "re-sent duplicate"
PATHS = (FLOOR, TAP, HELP, DUP)
XML = {"Content-Type": "text/xml"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
EVENT_LINE = re.compile(r"event (?P<kind>\w+) from \S+: (?P<outcome>\S+) in (?P<ms>\d+) ms")


class BenchError(Exception):
    """The harness could not go on (a process does not start, the cards never arrive)."""


@dataclass(frozen=True)
class Plan:
    """What one run does; counts are per round."""

    taps: int = 1000
    texts: int = 1000
    dups: int = 1000
    connections: int = 32
    rounds: int = 3
    database: str = "sqlite"
    profile: str = ""  # a file for the bot's cProfile statistics (whole run), or nothing

    @property
    def warmup(self) -> int:
        """Requests per path in the untimed warm-up round."""
        return max(32, self.connections)

    @property
    def drafts(self) -> int:
        return self.taps * self.rounds + self.warmup

    @property
    def help_texts(self) -> int:
        return self.texts * self.rounds + self.warmup


@dataclass(frozen=True)
class People:
    """Who is on the staff list besides bench.chaos's reviewers, leaders and publisher."""

    editors: tuple[str, ...]  # submit the drafts (and decide their 一审)
    readers: tuple[str, ...]  # type /help
    duplicators: tuple[str, ...]  # one per round (0: the warm-up): the re-sent /help

    @classmethod
    def for_plan(cls, plan: Plan) -> People:
        editors = max(1, math.ceil(plan.drafts * PER_DRAFT / BUDGET))
        readers = max(1, math.ceil(plan.help_texts / BUDGET))
        return cls(
            editors=tuple(f"ed{n:04d}" for n in range(1, editors + 1)),
            readers=tuple(f"rd{n:04d}" for n in range(1, readers + 1)),
            duplicators=tuple(f"dp{n:02d}" for n in range(plan.rounds + 1)),
        )

    def staff(self) -> list[dict[str, Any]]:
        others = [p for p in staff() if "collector" not in p["roles"]]
        ours = [*self.editors, *self.readers, *self.duplicators]
        return others + [{"userid": u, "name": f"编辑{u}", "roles": ["collector"]} for u in ours]


@dataclass(frozen=True)
class Callback:
    """One POST as WeCom makes it: the signed query and the encrypted body."""

    query: str
    body: bytes


@dataclass(frozen=True)
class Target:
    """A 一审 card delivered to its submitter, with the key of its 同意 button."""

    title: str
    user: str
    task_id: str
    key: str


@dataclass
class Load:
    """What the client saw of one batch of requests."""

    latencies: list[float]  # ms, in the order the requests were taken
    statuses: Counter[int]
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds > 0 else 0.0

    @property
    def non_200(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != 200)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


@dataclass
class Sample:
    """One path in one round."""

    path: str
    round: int
    load: Load
    bot_cpu: float  # share of one CPU over the path's wall time
    floor_cpu: float
    bench_cpu: float
    lag: float | None = None  # seconds until the outbox had nothing due (bot paths)


async def drive(
    http: aiohttp.ClientSession, base: str, callbacks: Sequence[Callback], connections: int
) -> Load:
    """Post `callbacks` over `connections` concurrent connections; time each request."""
    urls = [URL(f"{base}?{cb.query}", encoded=True) for cb in callbacks]
    latencies = [0.0] * len(callbacks)
    statuses: Counter[int] = Counter()
    order = iter(range(len(callbacks)))

    async def connection() -> None:
        for i in order:
            started = time.perf_counter()
            try:
                async with http.post(urls[i], data=callbacks[i].body, headers=XML) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError):
                status = 599
            latencies[i] = (time.perf_counter() - started) * 1000
            statuses[status] += 1

    began = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(max(1, min(connections, len(urls))))))
    return Load(latencies, statuses, time.perf_counter() - began)


class Composer:
    """Callbacks as the simulator composes them, recorded instead of posted."""

    def __init__(self, sim: WeComSimulator) -> None:
        self.sim = sim

    async def _record(self, act: Callable[[], Awaitable[Any]]) -> Callback:
        taken: list[Callback] = []

        async def recorder(query: dict[str, str], body: str) -> CallbackResult:
            taken.append(Callback(urlencode(query), body.encode("utf-8")))
            return CallbackResult(200, "")

        self.sim._post = recorder  # type: ignore[method-assign]
        try:
            await act()
        finally:
            del self.sim._post  # the class's own post again
        (callback,) = taken
        return callback

    async def text(self, user: str, content: str, msg_id: int) -> Callback:
        return await self._record(lambda: self.sim.send_text(user, content, msg_id=msg_id))

    async def tap(self, target: Target) -> Callback:
        return await self._record(lambda: self.sim.click(target.user, target.task_id, target.key))


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of process `pid` (all its threads), 0 when it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def pin_cpus() -> tuple[set[int], set[int]] | None:
    """(this process's CPUs, the servers' CPUs), or None with fewer than 2 CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[0]}, {cpus[1]}


def submission(number: int, title: str) -> str:
    category = list(CATEGORIES)[number % len(CATEGORIES)]
    label, source, _, _ = CATEGORIES[category]
    return (
        f"/submit {title}\n类别：{label}\n{source}\n公开：主动公开\n平台：政府网站\n"
        f"第{number}号吞吐测试稿件，用来测量卡片点击的处理速度。"
    )


# ---- the run ----------------------------------------------------------------------------------


class Bench:
    """One run against `database_url` (a fresh, empty database), files under `workdir`."""

    def __init__(self, plan: Plan, database_url: str, workdir: Path, say: Callable[[str], None]) -> None:
        self.plan = plan
        self.database_url = database_url
        self.workdir = workdir
        self.say = say
        self.people = People.for_plan(plan)
        secret, token, aes_key = secrets.token_hex(16), secrets.token_hex(8), random_aes_key()
        self.wecom = {
            "corp_id": CORP_ID,
            "agent_id": AGENT_ID,
            "secret": secret,
            "token": token,
            "encoding_aes_key": aes_key,
        }
        self.sim = WeComSimulator(
            corp_id=CORP_ID,
            corp_secret=secret,
            agent_id=AGENT_ID,
            token=token,
            encoding_aes_key=aes_key,
            clock=SystemClock(),
        )
        for person in self.people.staff():
            self.sim.add_member(person["userid"], person["name"])
        self.compose = Composer(self.sim)
        self.msg_ids = itertools.count(8_300_000_000_000_000_000)
        self.bot: Instance | None = None
        self.floor: Instance | None = None
        self.pinning = pin_cpus()
        self.samples: list[Sample] = []
        self.problems: list[str] = []
        self.setup_notes: list[str] = []
        self.tapped: dict[int, list[Target]] = {}  # round → targets (0: the warm-up)
        self.help_ids: dict[int, list[int]] = {}  # round → MsgIds of its /help texts
        self.targets: list[Target] = []
        self.staff_size = len(self.people.staff())
        self.callback_path = ""  # the bot's, known once its settings are built
        self._engine: AsyncEngine | None = None
        self._sessions: Any = None
        self.stalled = False  # the outbox stopped sending (see quiet)

    # ---- processes ------------------------------------------------------------------------

    def _config(self, port: int, sim_url: str) -> dict[str, Any]:
        return {
            "unit_name": "吞吐测试单位",
            "log_level": "INFO",
            "wecom": {**self.wecom, "api_base": sim_url, "oauth_base": sim_url},
            "server": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
            "database": {"url": self.database_url},
            "storage": {"files_dir": str(self.workdir / "files")},
            "web": {"session_secret": secrets.token_hex(32)},
            "staff": self.people.staff(),
            "chains": chains(),
        }

    def _start(self, instance: Instance) -> None:
        instance.start()
        if self.pinning is not None and instance.proc is not None:
            os.sched_setaffinity(instance.proc.pid, self.pinning[1])

    async def start(self, http: aiohttp.ClientSession, sim_url: str) -> None:
        port, floor_port = free_port(), free_port()
        data = self._config(port, sim_url)
        settings: Settings = settings_from_mapping(data, env={})  # a bad config fails here
        path = self.workdir / "bot.toml"
        path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in data.items()), "utf-8")
        self.callback_path = settings.server.callback_path
        profiler = ["-m", "cProfile", "-o", self.plan.profile] if self.plan.profile else []
        self.bot = Instance(
            "bot",
            port,
            [sys.executable, *profiler, "-m", "bot", "serve", "-c", str(path)],
            self.workdir / "bot.log",
        )
        self.floor = Instance(
            "floor",
            floor_port,
            [sys.executable, "-m", "bench.bench_callback", "--floor", str(path), "--port", str(floor_port)],
            self.workdir / "floor.log",
        )
        for instance in (self.bot, self.floor):
            self._start(instance)
        for instance in (self.bot, self.floor):
            await instance.ready(http, 120)

    def pid(self, instance: Instance | None) -> int | None:
        return instance.proc.pid if instance is not None and instance.proc is not None else None

    # ---- the database ---------------------------------------------------------------------

    def db(self) -> Any:
        """A session for the bench's own reads (a plain engine: no BEGIN IMMEDIATE on SQLite,
        so polling never takes the bot's write lock)."""
        if self._engine is None:
            self._engine = create_async_engine(self.database_url)
            self._sessions = make_session_factory(self._engine)
        return self._sessions()

    async def outbox_counts(self) -> tuple[int, int]:
        """(rows due now, rows sent so far)."""
        now = datetime.now(UTC)
        pending = OutboxMessage.status == "pending"
        due = select(func.count()).select_from(OutboxMessage).where(pending, OutboxMessage.not_before <= now)
        sent = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
        async with self.db() as session:
            return int((await session.exec(due)).one()), int((await session.exec(sent)).one())

    async def quiet(self, requests: int = 0) -> float | None:
        """Seconds until the outbox has no row due, after `requests` callbacks; None when it
        did not settle within QUIET_WITHIN (or a second per request), or stopped sending: rows
        due and none sent for STALL_AFTER seconds (then later waits are skipped)."""
        if self.stalled:
            return None
        started, within = time.monotonic(), max(QUIET_WITHIN, float(requests))
        due, sent = await self.outbox_counts()
        progress, bot_cpu = started, cpu_seconds(self.pid(self.bot))
        while due:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            due, now_sent = await self.outbox_counts()
            if now_sent != sent:
                sent, progress, bot_cpu = now_sent, now, cpu_seconds(self.pid(self.bot))
            elif due and now - progress > STALL_AFTER:
                busy = (cpu_seconds(self.pid(self.bot)) - bot_cpu) / (now - progress)
                self.stalled = True
                self.problems.append(
                    f"the outbox stopped sending: {due} rows due and none sent for "
                    f"{now - progress:.0f} s while the bot used {100 * busy:.0f}% of a CPU; "
                    "later outbox waits were skipped, so the paths after it ran beside that"
                )
                return None
            if due and now - started > within:
                self.problems.append(f"the outbox still had rows due after {within:.0f} s")
                return None
        return time.monotonic() - started

    # ---- set-up ---------------------------------------------------------------------------

    def delivered_cards(self) -> dict[str, Target]:
        """Every open 一审 card in the editors' inboxes, by draft title."""
        found = {}
        for user in self.people.editors:
            for delivered in self.sim.inbox(user):
                if delivered.msgtype != "template_card":
                    continue
                card = delivered.payload["template_card"]
                subtitle = card.get("sub_title_text", "")
                if not card["main_title"]["title"].startswith("【一审】") or "》" not in subtitle:
                    continue
                state = self.sim.card(card["task_id"])
                if state.is_active_for(user):
                    title = subtitle[1 : subtitle.index("》")]
                    key = button_key(state.shown_to(user), "同意")
                    found[title] = Target(title, user, str(card["task_id"]), key)
        return found

    async def set_up(self, bot_http: aiohttp.ClientSession, bot_url: str) -> None:
        plan, editors = self.plan, self.people.editors
        started = time.perf_counter()
        titles, bodies = [], []
        for n in range(1, plan.drafts + 1):
            title = f"吞吐测试{n:05d}号稿"
            titles.append(title)
            text = submission(n, title)
            bodies.append(await self.compose.text(editors[(n - 1) % len(editors)], text, next(self.msg_ids)))
        load = await drive(bot_http, bot_url, bodies, plan.connections)
        if load.non_200:
            raise BenchError(f"submissions answered {dict(load.statuses)}")
        submitted = time.perf_counter() - started
        self.say(
            f"{plan.drafts} drafts submitted by chat in {submitted:.1f} s "
            f"({load.rate:.0f}/s); waiting for their 一审 cards"
        )
        await self.quiet(plan.drafts)  # every message of the set-up sent (none is paced)
        cards = self.delivered_cards()
        if len(cards) < plan.drafts:
            raise BenchError(f"{len(cards)} of {plan.drafts} 一审 cards arrived")
        ready = time.perf_counter() - started
        self.targets = [cards[title] for title in titles]
        async with self.db() as session:
            sent = int(
                (
                    await session.exec(
                        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")
                    )
                ).one()
            )
        self.setup_notes.append(
            f"set-up: {plan.drafts} drafts submitted by chat ({plan.connections} connections) in "
            f"{submitted:.1f} s ({load.rate:.0f}/s, p50 {load.percentile(0.5):.0f} ms); every "
            f"一审 card delivered and the outbox empty after {ready:.1f} s ({sent} messages sent, "
            f"the last {ready - submitted:.1f} s after the last submission was answered)"
        )
        self.say(f"set-up done in {ready:.1f} s")

    # ---- rounds ---------------------------------------------------------------------------

    async def measure(
        self, path: str, number: int, http: aiohttp.ClientSession, url: str, callbacks: Sequence[Callback]
    ) -> Sample:
        bot, floor = self.pid(self.bot), self.pid(self.floor)
        before = (cpu_seconds(bot), cpu_seconds(floor), time.process_time())
        load = await drive(http, url, callbacks, self.plan.connections)
        after = (cpu_seconds(bot), cpu_seconds(floor), time.process_time())
        used = [(b - a) / load.seconds for a, b in zip(before, after, strict=True)]
        sample = Sample(path, number, load, *used)
        if load.non_200:
            self.problems.append(f"round {number}, {path}: answers {dict(load.statuses)}")
        if path != FLOOR:
            sample.lag = await self.quiet(len(callbacks))
        if number > 0:
            self.samples.append(sample)
        return sample

    async def fresh(
        self, callbacks: list[Callback], since: float, again: Callable[[], Awaitable[list[Callback]]]
    ) -> list[Callback]:
        """`callbacks`, or composed again when their timestamps have aged (a long run)."""
        return await again() if time.monotonic() - since > STALE_AFTER else callbacks

    async def one_round(
        self, number: int, sessions: dict[str, aiohttp.ClientSession], urls: dict[str, str]
    ) -> None:
        """Floor, taps, /help, duplicates; round 0 is the warm-up."""
        plan = self.plan
        taps, texts, dups = (plan.warmup,) * 3 if number == 0 else (plan.taps, plan.texts, plan.dups)
        offset = 0 if number == 0 else plan.warmup + (number - 1) * plan.taps
        targets = self.targets[offset : offset + taps]
        self.tapped[number] = targets
        first_reader = sum(len(ids) for ids in self.help_ids.values())
        readers = [self.people.readers[(first_reader + i) % len(self.people.readers)] for i in range(texts)]
        self.help_ids[number] = [next(self.msg_ids) for _ in range(texts)]

        async def tap_bodies() -> list[Callback]:
            return [await self.compose.tap(target) for target in targets]

        async def help_bodies() -> list[Callback]:
            pairs = zip(readers, self.help_ids[number], strict=True)
            return [await self.compose.text(user, "/help", msg_id) for user, msg_id in pairs]

        composed = time.monotonic()
        tapping, helping = await tap_bodies(), await help_bodies()
        await self.measure(FLOOR, number, sessions["floor"], urls["floor"], tapping + helping)
        await self.quiet()
        tapping = await self.fresh(tapping, composed, tap_bodies)
        await self.measure(TAP, number, sessions["bot"], urls["bot"], tapping)
        helping = await self.fresh(helping, composed, help_bodies)
        await self.measure(HELP, number, sessions["bot"], urls["bot"], helping)
        original = await self.compose.text(self.people.duplicators[number], "/help", next(self.msg_ids))
        first = await drive(sessions["bot"], urls["bot"], [original], 1)
        if first.non_200:
            self.problems.append(f"round {number}: the /help to be re-sent answered {dict(first.statuses)}")
        await self.quiet()  # its reply is sent before the re-sends are timed
        await self.measure(DUP, number, sessions["bot"], urls["bot"], [original] * dups)

    # ---- checks ---------------------------------------------------------------------------

    async def recorded(self) -> dict[str, tuple[int, int]]:
        """Per path (timed rounds): what the database holds, and what it should."""
        timed = [r for r in self.tapped if r > 0]
        task_ids = [t.task_id for r in timed for t in self.tapped[r]]
        warm_ids = [t.task_id for t in self.tapped.get(0, [])]
        keys = [f"msg:{i}" for r in timed for i in self.help_ids[r]]
        duplicators = [self.people.duplicators[r] for r in timed]
        async with self.db() as session:
            exactly_one = {}
            for name, ids in (("timed", task_ids), ("warm-up", warm_ids)):
                exactly_one[name] = 0
                for chunk in _chunks(ids):
                    drafts = select(ApprovalCard.draft_id).where(col(ApprovalCard.task_id).in_(chunk))
                    counts = (
                        await session.exec(
                            select(StageDecision.draft_id, func.count())
                            .where(StageDecision.stage == 1, col(StageDecision.draft_id).in_(drafts))
                            .group_by(StageDecision.draft_id)
                        )
                    ).all()
                    exactly_one[name] += sum(1 for _, n in counts if n == 1)
            help_keys = 0
            for chunk in _chunks(keys):
                help_keys += int(
                    (
                        await session.exec(
                            select(func.count())
                            .select_from(ProcessedCallback)
                            .where(col(ProcessedCallback.key).in_(chunk))
                        )
                    ).one()
                )
            replies = int(
                (
                    await session.exec(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.op == "send", col(OutboxMessage.recipients).in_(duplicators))
                    )
                ).one()
            )
        if exactly_one["warm-up"] != len(warm_ids):
            self.problems.append(
                f"warm-up taps: {exactly_one['warm-up']} of {len(warm_ids)} "
                "drafts hold exactly one 一审 decision"
            )
        return {
            TAP: (exactly_one["timed"], len(task_ids)),
            HELP: (help_keys, len(keys)),
            DUP: (replies, len(duplicators)),
        }

    async def backlog(self) -> str:
        """The rows still pending (the reviewers' paced cards and previews), by recipient."""
        async with self.db() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage.recipients, func.count())
                    .where(OutboxMessage.status == "pending")
                    .group_by(OutboxMessage.recipients)
                )
            ).all()
        ranked = sorted(rows, key=lambda row: (-row[1], row[0]))
        shown = [f"{who or '(card updates)'} {n}" for who, n in ranked[:3]]
        if len(ranked) > 3:
            rest = ranked[3:]
            shown.append(f"{sum(n for _, n in rest)} to {len(rest)} others")
        return ", ".join(shown) or "none"

    def log_summary(self) -> str:
        """The bot's log in a line: events by outcome, WARNING and ERROR lines (errors are
        problems: a clean run has none), each with its traceback's last line if it has one."""
        if self.bot is None:
            return ""
        outcomes: Counter[str] = Counter()
        said: dict[str, list[list[str]]] = {"ERROR": [], "WARNING": []}  # [message, exception]
        latest: list[str] | None = None
        for line in self.bot.log_path.read_text("utf-8", "replace").splitlines():
            parts = line.split(" ", 3)  # date time LEVEL logger: message
            if line[:4].isdigit():
                latest = None
                if len(parts) == 4 and parts[2] in said:
                    latest = [parts[3][:160], ""]
                    said[parts[2]].append(latest)
            elif (
                latest is not None
                and line.strip()
                and not line.startswith(" ")
                and not line.startswith(("Traceback", "During handling", "The above exception"))
            ):
                latest[1] = line.strip()[:200]
            found = EVENT_LINE.search(line)
            if found:
                outcomes[f"{found['kind']} {found['outcome']}"] += 1
        shown = {level: [f"{m} ({e})" if e else m for m, e in entries] for level, entries in said.items()}
        if shown["ERROR"]:
            self.problems.append(f"the bot logged {len(shown['ERROR'])} errors, first: {shown['ERROR'][0]}")
        events = ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items()))
        kinds = "; ".join(
            f"{level}: "
            + " | ".join(f"{n}× {line}" for line, n in Counter(line[:120] for line in lines).most_common(3))
            for level, lines in shown.items()
            if lines
        )
        return (
            f"bot log: {len(shown['ERROR'])} ERROR and {len(shown['WARNING'])} WARNING lines"
            f"{' (the most frequent, ' + kinds + ')' if kinds else ''}; events by outcome: {events}"
        )

    # ---- all of it ------------------------------------------------------------------------

    async def run(self) -> str:
        """Start everything, set up, run the rounds, check, report; always clean up."""
        runner = None
        if self.pinning is not None:
            os.sched_setaffinity(0, self.pinning[0])
        try:
            async with contextlib.AsyncExitStack() as stack:
                probe = await stack.enter_async_context(aiohttp.ClientSession())
                runner, sim_url = await serve(self.sim.app)
                await self.start(probe, sim_url)
                assert self.bot is not None and self.floor is not None
                urls = {
                    name: instance.url + self.callback_path
                    for name, instance in (("bot", self.bot), ("floor", self.floor))
                }
                self.sim.callback_url = urls["bot"]
                sessions = {}
                for name in urls:
                    connector = aiohttp.TCPConnector(limit=self.plan.connections)
                    sessions[name] = await stack.enter_async_context(
                        aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60))
                    )
                self.say(f"bot and floor up; staff of {self.staff_size}")
                await self.set_up(sessions["bot"], urls["bot"])
                for number in range(self.plan.rounds + 1):
                    await self.one_round(number, sessions, urls)
                    self.say("warm-up done" if number == 0 else f"round {number} done")
                recorded = await self.recorded()
                backlog = await self.backlog()
                most = max(len(self.sim.inbox(u)) for u in self.people.editors + self.people.readers)
                self.setup_notes.append(
                    f"most messages to one editor or /help sender: {most} (the bot paces at 25 a "
                    f"minute); dropped by WeCom's per-member limit: {len(self.sim.dropped)}; "
                    f"still pending at the end: {backlog}"
                )
        finally:
            for instance in (self.bot, self.floor):
                if instance is not None:
                    await instance.stop()
            if runner is not None:
                await runner.cleanup()
            await self.sim.close()
            if self._engine is not None:
                await self._engine.dispose()
        self.setup_notes.append(self.log_summary())
        return self.report(recorded)

    # ---- the report -----------------------------------------------------------------------

    def median_round(self, path: str) -> Sample:
        samples = [s for s in self.samples if s.path == path]
        middle = statistics.median_low([s.load.rate for s in samples])
        return next(s for s in samples if s.load.rate == middle)

    @staticmethod
    def cpu_a_request(sample: Sample) -> float:
        """CPU seconds the serving process spent a request in the round (the floor's for the
        floor): less swayed than requests/s by a machine whose speed varies from minute to
        minute, and compared with the floor's of the same round."""
        used = sample.floor_cpu if sample.path == FLOOR else sample.bot_cpu
        return used / sample.load.rate

    def floor_of(self, number: int) -> Sample:
        return next(s for s in self.samples if s.path == FLOOR and s.round == number)

    def report(self, recorded: dict[str, tuple[int, int]]) -> str:
        plan = self.plan
        floor_rate = self.median_round(FLOOR).load.rate
        head = [
            "path",
            "requests/s",
            "× floor",
            "p50 ms",
            "p99 ms",
            "max ms",
            "non-200",
            "recorded / expected",
        ]
        rows = []
        for path in PATHS:
            shown = self.median_round(path)
            load = shown.load
            non_200 = sum(s.load.non_200 for s in self.samples if s.path == path)
            have, want = recorded.get(path, (0, 0))
            if path in recorded and have != want:
                self.problems.append(f"{path}: recorded {have}, expected {want}")
            rows.append(
                [
                    path,
                    f"{load.rate:.0f}",
                    f"{load.rate / floor_rate:.2f}",
                    f"{load.percentile(0.5):.1f}",
                    f"{load.percentile(0.99):.1f}",
                    f"{max(load.latencies):.1f}",
                    str(non_200),
                    f"{have} / {want}" if path in recorded else "—",
                ]
            )
        rounds_head = [
            "round",
            "path",
            "requests",
            "requests/s",
            "p50 ms",
            "p99 ms",
            "bot CPU %",
            "floor CPU %",
            "bench CPU %",
            "CPU ms a request",
            "× floor's",
            "outbox lag s",
        ]
        per_round = [
            [
                str(s.round),
                s.path.split(":")[0],
                str(len(s.load.latencies)),
                f"{s.load.rate:.0f}",
                f"{s.load.percentile(0.5):.1f}",
                f"{s.load.percentile(0.99):.1f}",
                f"{100 * s.bot_cpu:.0f}",
                f"{100 * s.floor_cpu:.0f}",
                f"{100 * s.bench_cpu:.0f}",
                f"{1000 * self.cpu_a_request(s):.3f}",
                f"{self.cpu_a_request(s) / self.cpu_a_request(self.floor_of(s.round)):.1f}",
                "—"
                if s.lag is None and s.path == FLOOR
                else "not settled"
                if s.lag is None
                else f"{s.lag:.1f}",
            ]
            for s in self.samples
        ]
        if self.pinning is not None:
            pinning = (
                f"bot serve and floor pinned to CPU {min(self.pinning[1])}, load generator "
                f"+ simulator to CPU {min(self.pinning[0])} (PostgreSQL unpinned)"
            )
        else:
            pinning = "fewer than 2 CPUs: nothing pinned"
        url = make_url(self.database_url)
        database = (
            f"postgresql (database {url.database}, dropped afterwards)"
            if plan.database == "postgresql"
            else "sqlite (a new file)"
        )
        lines = [
            f"Callback throughput — commit {git_commit()}, database {database}",
            f"{plan.connections} connections, {plan.rounds} rounds of {plan.taps} taps, "
            f"{plan.texts} /help, {plan.dups} re-sent duplicates (the floor gets the round's "
            f"tap and /help bodies) after a warm-up round of {plan.warmup} per path; staff of "
            f"{self.staff_size}; {os.cpu_count()} CPUs, {pinning}",
            *self.setup_notes[:1],
            "",
            _table(head, rows),
            "",
            "Rows: the round with the median requests/s; non-200 and recorded / expected over "
            "all rounds (tap: drafts holding exactly one 一审 decision; /help: dedupe keys "
            "stored; duplicate: replies queued for the re-sent bodies, one each).",
            "",
            _table(rounds_head, per_round),
            "",
            *self.setup_notes[1:],
        ]
        return "\n".join(lines)


def _chunks(items: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    align = ["---"] + ["---:"] * (len(head) - 1)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(head), "|" + "|".join(align) + "|", *(line(r) for r in rows)])


# ---- the floor --------------------------------------------------------------------------------


def floor_app(settings: Settings) -> web.Application:
    """Signature check, wechatpy decrypt and parse_event, then 200: no dedupe, no database."""
    wecom = settings.wecom
    crypto = WeChatCrypto(wecom.token, wecom.encoding_aes_key, wecom.corp_id)

    async def receive(request: web.Request) -> web.Response:
        signature, timestamp, nonce = (
            request.query.get(name, "") for name in ("msg_signature", "timestamp", "nonce")
        )
        raw = await request.read()
        try:
            encrypted = str(xmltodict.parse(raw.decode("utf-8"))["xml"]["Encrypt"])
        except Exception:
            return web.Response(status=400, text="malformed body")
        if not hmac.compare_digest(expected_signature(wecom.token, timestamp, nonce, encrypted), signature):
            return web.Response(status=403, text="bad signature")
        try:
            parse_event(crypto.decrypt_message({"Encrypt": encrypted}, signature, timestamp, nonce))
        except Exception:
            return web.Response(status=400, text="unreadable")
        return web.Response(status=200, text="")

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post(settings.server.callback_path, receive)
    app.router.add_get("/healthz", health)
    return app


# ---- command line -----------------------------------------------------------------------------


def slowest_events(log_path: Path, shown: int = 8) -> str:
    """The bot log's event lines that took longest, slowest first (to tell why a request timed out)."""
    timed = []
    for line in log_path.read_text("utf-8", "replace").splitlines():
        found = EVENT_LINE.search(line)
        if found:
            timed.append((int(found["ms"]), line))
    return "\n".join(line for _, line in sorted(timed, reverse=True)[:shown])


async def _main(plan: Plan) -> tuple[str, list[str]]:
    def say(line: str) -> None:
        sys.stderr.write(f"[bench_callback] {line}\n")
        sys.stderr.flush()

    pinning = pin_cpus()
    say(
        "pinning: "
        + (
            f"bot serve and floor → CPU {min(pinning[1])}, load generator and "
            f"simulator → CPU {min(pinning[0])}"
            if pinning
            else "none (1 CPU)"
        )
    )
    with tempfile.TemporaryDirectory(prefix="sanshen-bench-callback-") as folder:
        async with contextlib.AsyncExitStack() as stack:
            if plan.database == "postgresql":
                url = await stack.enter_async_context(fresh_database())
            else:
                url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            say(f"database {make_url(url).render_as_string(hide_password=True)}")
            bench = Bench(plan, url, Path(folder), say)
            try:
                return await bench.run(), bench.problems
            except BaseException:
                for instance in (bench.bot, bench.floor):
                    if instance is not None:
                        sys.stderr.write(f"--- {instance.name} log tail ---\n{instance.tail()}\n")
                if bench.bot is not None:
                    sys.stderr.write(
                        f"--- the bot's slowest events ---\n{slowest_events(bench.bot.log_path)}\n"
                    )
                raise


def main(argv: Sequence[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.bench_callback", description=summary)
    parser.add_argument("--taps", type=int, help="card taps per round (default 1000)")
    parser.add_argument("--texts", type=int, help="/help texts per round (default 1000)")
    parser.add_argument("--dups", type=int, help="re-sent duplicates per round (default 1000)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="48 of each per round, 2 rounds: a smoke test")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        default="",
        help="run the bot under cProfile and write its statistics here (read with "
        "python -m pstats; the figures are then the profiler's, not the bot's)",
    )
    parser.add_argument("--floor", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        web.run_app(
            floor_app(load_settings(args.floor)),
            loop=new_event_loop(),  # the bot's own loop: the floor measures what it could do
            host="127.0.0.1",
            port=args.port,
            print=None,
            access_log=None,
        )
        return 0
    size = 48 if args.quick else 1000
    plan = Plan(
        taps=args.taps or size,
        texts=args.texts or size,
        dups=args.dups or size,
        connections=args.connections,
        rounds=args.rounds or (2 if args.quick else 3),
        database=args.database,
        profile=str(Path(args.profile).resolve()) if args.profile else "",
    )
    if min(plan.taps, plan.texts, plan.dups, plan.connections, plan.rounds) < 1:
        parser.error("every count must be at least 1")
    report, problems = asyncio.run(_main(plan))
    sys.stdout.write(report + "\n")
    if problems:
        sys.stdout.write("\nPROBLEMS:\n" + "".join(f"- {p}\n" for p in problems))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
