"""Chaos run (#12): review flows through two bot processes on one PostgreSQL database, a slow
and faulty WeCom simulator over real HTTP, and SIGKILLs at random instants; every message must
arrive exactly once and every decision be recorded exactly once.

    .venv/bin/python -m bench.chaos --flows 200 --seed 7

What runs: the simulator (bot.simulator) served on a loopback port with WireFaults (latency on
every message/send and card update, some sends answered after the bot's client timeout), error
bursts, short outages and token expiries; a small load balancer where WeCom's callback URL
points, which fails a request over to the other instance when one dies under it; two
`python -m bot serve` processes. Each flow is a draft submitted by chat and approved on its
一审, 二审 and 三审 cards by three people, all through signed and encrypted callbacks. Kills fall
at random points of the run (seeded; the instant within a call is timing, not the seed), and the
killed instance is started again. At the end the run settles (faults stop, both instances up,
no outbox row pending), and every message the bot queued (each outbox row, per recipient) is
looked up in the members' inboxes in the simulator: delivered once, more than once (duplicates)
or never (lost); anything delivered that was not queued counts too. The database must hold one
decision per flow and stage, every draft approved, and every decided card must be greyed.

Timings: by default the bot keeps its shipped HTTP timeout, outbox claim and first back-off
(10 s, 60 s, 5 s). tests/test_chaos.py runs this same code with fewer flows and shrinks those
three numbers in the child processes (`--instance`), so that a killed sender's claim lapses in
seconds; nothing else about the bot changes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import inspect
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import select

from bot.cli.stack import random_aes_key
from bot.core.clock import SystemClock
from bot.core.config import settings_from_mapping
from bot.simulator import SimulatorError, WeComSimulator, button_key
from bot.simulator.wire import WireFaults, serve
from bot.wecom import outbox as outbox_module
from bot.wecom.client import WeComClient
from storage.db import make_engine, make_session_factory
from storage.models import Draft, OutboxMessage, StageDecision

ROOT = Path(__file__).resolve().parent.parent
SEND, UPDATE = "/message/send", "/message/update_template_card"
CALLBACK_PATH = "/wecom/callback"
CALLS_PER_FLOW = 15  # API calls one clean flow makes (12 sends, 3 card updates): spaces the kills
CORP_ID, AGENT_ID = "wwchaos000000001", 1000002
ADMIN_URL = os.environ.get("SANSHEN_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
SHIPPED_TIMEOUT = float(inspect.signature(WeComClient.__init__).parameters["timeout"].default)
SHIPPED_CLAIM = outbox_module.CLAIM_FOR.total_seconds()
SHIPPED_BACKOFF = float(outbox_module.FIRST_BACKOFF_SECONDS)

# The unit: twelve editors (one submits and decides 一审, @submitter), and per category its own
# 科室负责人 (二审) and 单位领导 (三审), so that no member's 25 messages a minute pace the run.
# No admin and no duty roster, on purpose: the daily roster check then has nobody to tell (the
# case that showed a message queued to nobody holding back every card update).
COLLECTORS = tuple(f"cj{n:02d}" for n in range(1, 13))
CATEGORIES = {  # category → (类别, 来源 line, 二审, 三审)
    "issued": ("制发类", "来源：本机关制发", "sh1", "ld1"),
    "reprint": ("转载类", "转载：人民网", "sh2", "ld2"),
    "reported": ("报送类", "来源：非本机关", "sh3", "ld3"),
}
PUBLISHER = "fb1"
STAGES = ("一审", "二审", "三审")


def staff() -> list[dict[str, Any]]:
    people = [{"userid": u, "name": f"编辑{u[2:]}", "roles": ["collector"]} for u in COLLECTORS]
    for n, (_, _, reviewer, leader) in enumerate(CATEGORIES.values(), start=1):
        people.append({"userid": reviewer, "name": f"科长{n}", "roles": ["reviewer"]})
        people.append({"userid": leader, "name": f"领导{n}", "roles": ["leader"]})
    people.append({"userid": PUBLISHER, "name": "发布员", "roles": ["publisher"]})
    return people


def chains() -> list[dict[str, Any]]:
    """三审 without 校 (this run is about delivery), one reviewer and one leader per category."""
    return [
        {
            "category": category,
            "proofreading": False,
            "stages": [
                {"name": "一审", "assignees": ["@submitter"]},
                {"name": "二审", "assignees": [reviewer]},
                {"name": "三审", "assignees": [leader]},
            ],
        }
        for category, (_, _, reviewer, leader) in CATEGORIES.items()
    ]


@dataclass(frozen=True)
class ChaosPlan:
    """What one run does; the defaults are the issue's target (1.5 s a send, shipped timings)."""

    flows: int = 200
    seed: int = 1
    kills: int = 20  # SIGKILLs, spread over the run at random points
    concurrency: int = 24  # flows in progress at once
    latency: float = 1.5  # seconds every message/send and card update takes before its work
    late_fraction: float = 0.02  # share of message/send answered after the client gave up
    fault_every: tuple[float, float] = (10.0, 30.0)  # seconds between bursts, outages, expiries
    down_for: tuple[float, float] = (0.5, 3.0)  # seconds a killed instance stays down
    client_timeout: float | None = None  # the bot's HTTP timeout; None: as shipped
    claim_seconds: float | None = None  # an outbox row's claim; None: as shipped
    backoff_seconds: float | None = None  # the first retry delay; None: as shipped
    step_deadline: float = 900.0  # longest wait for one message a flow needs next
    settle_deadline: float = 1200.0  # longest wait, after the flows, for the outbox to empty

    @property
    def timeout(self) -> float:
        return self.client_timeout or SHIPPED_TIMEOUT

    @property
    def late_seconds(self) -> float:
        """How late a late answer comes: past the client's timeout."""
        return self.timeout * 1.5

    def instance_argv(self, config: Path) -> list[str]:
        """The command of one bot process: `python -m bot serve`, or with shrunk timings."""
        scaled = {
            "--client-timeout": self.client_timeout,
            "--claim-seconds": self.claim_seconds,
            "--backoff-seconds": self.backoff_seconds,
        }
        extra = [f"{key}={value}" for key, value in scaled.items() if value is not None]
        if not extra:
            return [sys.executable, "-m", "bot", "serve", "-c", str(config)]
        return [sys.executable, "-m", "bench.chaos", "--instance", str(config), *extra]


class ChaosError(Exception):
    """The harness itself could not go on (an instance does not start, a flow stalls)."""


@dataclass
class Flow:
    """One draft: submitted by chat, approved at each stage on its card."""

    number: int
    title: str
    submitter: str
    category: str
    reviewer: str
    leader: str
    msg_id: int
    decided: int = 0  # stages approved so far (the harness's taps that were acknowledged)
    done: bool = False
    error: str = ""

    @property
    def deciders(self) -> tuple[str, str, str]:
        return (self.submitter, self.reviewer, self.leader)

    def submission(self) -> str:
        label, source, _, _ = CATEGORIES[self.category]
        return (
            f"/submit {self.title}\n类别：{label}\n{source}\n公开：主动公开\n平台：政府网站\n"
            f"第{self.number}号混沌测试稿件，检验消息不重不漏。"
        )


def make_flows(plan: ChaosPlan) -> list[Flow]:
    categories = list(CATEGORIES)
    flows = []
    for n in range(plan.flows):
        category = categories[n % len(categories)]
        _, _, reviewer, leader = CATEGORIES[category]
        flows.append(
            Flow(
                number=n + 1,
                title=f"混沌{plan.seed}-{n + 1:04d}号稿",
                submitter=COLLECTORS[n % len(COLLECTORS)],
                category=category,
                reviewer=reviewer,
                leader=leader,
                msg_id=8_100_000_000_000_000_000 + n,  # a MsgId of its own, kept for WeCom's re-sends
            )
        )
    return flows


# ---- the processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_value(value: Any) -> str:
    """A TOML value (inline tables and arrays), enough for a config file."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are TOML basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {type(value).__name__}")


class Instance:
    """One `serve` process: started, killed with SIGKILL, started again, stopped."""

    def __init__(self, name: str, port: int, argv: list[str], log_path: Path) -> None:
        self.name = name
        self.url = f"http://127.0.0.1:{port}"
        self.argv = argv
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self.starts = 0

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANSHEN_")}
        self._log = self.log_path.open("ab")  # closed when the process is reaped
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.starts += 1

    async def ready(self, http: aiohttp.ClientSession, within: float) -> None:
        """Wait until /healthz answers (start-up done, migrations and all)."""
        deadline = time.monotonic() + within
        probe = aiohttp.ClientTimeout(total=2)
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise ChaosError(f"{self.name} exited during start-up:\n{self.tail()}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(self.url + "/healthz", timeout=probe) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise ChaosError(f"{self.name} not ready after {within:.0f} s:\n{self.tail()}")
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever it was doing is cut off."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        await self._reap()

    async def stop(self, within: float = 20.0) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it does not end in time."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.to_thread(self.proc.wait), within)
        await self.kill()

    async def _reap(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(self.proc.wait)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, size: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")
        return ""


class Balancer:
    """Where WeCom's callback URL points: each request goes to a live instance, and to the other
    one when the first refuses or dies under it (the request is re-sent byte for byte)."""

    def __init__(self, rng: random.Random, backends: Mapping[str, str]) -> None:
        self._rng = rng
        self.backends = dict(backends)
        self.up: set[str] = set()
        self.failovers = 0
        self._http: aiohttp.ClientSession | None = None
        self._closed = False
        self.app = web.Application(client_max_size=1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._forward)

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "text/xml")}
        deadline = time.monotonic() + 3.5  # WeCom waits 5 s for an answer
        while True:
            live = sorted(self.up)
            if live:
                name = self._rng.choice(live)
                url = self.backends[name] + request.path_qs
                wait = aiohttp.ClientTimeout(total=max(0.5, deadline - time.monotonic()))
                try:
                    async with self._session().request(
                        request.method, url, data=body, headers=headers, timeout=wait
                    ) as resp:
                        kind = resp.headers.get("Content-Type", "text/plain")
                        answer = await resp.read()
                        headers = {"Content-Type": kind}
                        return web.Response(status=resp.status, body=answer, headers=headers)
                except (aiohttp.ClientError, TimeoutError):
                    self.failovers += 1
            if time.monotonic() > deadline:
                return web.Response(status=502, text="no instance answered")
            await asyncio.sleep(0.05)

    def _session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise aiohttp.ClientConnectionError("the balancer is stopping")
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def close(self) -> None:
        self._closed = True
        if self._http is not None:
            await self._http.close()
            self._http = None


# ---- the run ----------------------------------------------------------------------------------


@dataclass
class ChaosReport:
    """What a run did and what it found."""

    plan: ChaosPlan
    flows_done: int = 0
    kills: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    late_answers: int = 0
    failovers: int = 0
    callbacks_unacknowledged: int = 0
    messages_expected: int = 0
    delivered_once: int = 0
    duplicates: int = 0
    lost: int = 0
    unexpected: int = 0
    queued_twice: int = 0
    dropped_by_limit: int = 0
    decisions_expected: int = 0
    decisions_recorded: int = 0
    decisions_distinct: int = 0
    drafts_approved: int = 0
    cards_left_open: int = 0
    outbox_status: Counter[str] = field(default_factory=Counter)  # "op status" → rows
    wall_seconds: float = 0.0
    details: list[str] = field(default_factory=list)  # what problems() names, item by item
    given_up: list[str] = field(default_factory=list)  # rows failed or expired, with the reason

    def problems(self) -> list[str]:
        """Everything that is not exactly-once, in words; empty when the run passed."""
        found = []
        if self.flows_done != self.plan.flows:
            found.append(f"{self.plan.flows - self.flows_done} flows did not finish")
        for name in (
            "duplicates",
            "lost",
            "unexpected",
            "queued_twice",
            "dropped_by_limit",
            "cards_left_open",
        ):
            if getattr(self, name):
                found.append(f"{name}: {getattr(self, name)}")
        if not self.decisions_expected == self.decisions_recorded == self.decisions_distinct:
            found.append(
                f"decisions expected {self.decisions_expected}, recorded "
                f"{self.decisions_recorded}, distinct {self.decisions_distinct}"
            )
        if self.drafts_approved != self.plan.flows:
            found.append(f"drafts approved {self.drafts_approved} of {self.plan.flows}")
        if self.pending:
            found.append(f"outbox rows still pending: {self.pending}")
        return found + self.details[:20]

    @property
    def pending(self) -> int:
        return sum(n for key, n in self.outbox_status.items() if key.endswith(" pending"))

    def table(self) -> str:
        p = self.plan
        rows = [
            ("flows (completed)", f"{p.flows} ({self.flows_done})"),
            ("instance kills (SIGKILL)", str(self.kills)),
            ("messages expected", str(self.messages_expected)),
            ("delivered once", str(self.delivered_once)),
            ("duplicates", str(self.duplicates)),
            ("lost", str(self.lost)),
            ("decisions expected / recorded", f"{self.decisions_expected} / {self.decisions_recorded}"),
            ("wall time", f"{self.wall_seconds:.0f} s"),
        ]
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults.items())) or "none"
        rows_by_status = ", ".join(f"{k} {v}" for k, v in sorted(self.outbox_status.items()))
        claim = p.claim_seconds or SHIPPED_CLAIM
        backoff = p.backoff_seconds or SHIPPED_BACKOFF
        notes = [
            f"seed {p.seed}; latency {p.latency:g} s per send and card update; the bot's client "
            f"timeout {p.timeout:g} s, outbox claim {claim:g} s, first back-off {backoff:g} s",
            f"answers later than the timeout {self.late_answers}; faults: {faults}; callbacks "
            f"failed over to the other instance {self.failovers}; callbacks WeCom gave up on "
            f"(sent again) {self.callbacks_unacknowledged}",
            f"outbox rows: {rows_by_status}; unexpected deliveries {self.unexpected}; dropped by "
            f"the member limit {self.dropped_by_limit}; stage cards left open "
            f"{self.cards_left_open}",
            *self.given_up[:10],
        ]
        width = max(len(name) for name, _ in rows)
        lines = ["| measure | value |", "|---|---:|"] + [f"| {n:<{width}} | {v} |" for n, v in rows]
        return "\n".join(lines + [""] + notes)


T = TypeVar("T")


class ChaosRun:
    """One run against `database_url` (a fresh, empty database), files under `workdir`."""

    def __init__(
        self, plan: ChaosPlan, database_url: str, workdir: Path, progress: Callable[[str], None] | None = None
    ) -> None:
        self.plan = plan
        self.database_url = database_url
        self.workdir = workdir
        self.progress = progress or (lambda line: None)
        self.kill_rng = random.Random(plan.seed)  # where the kills fall, whom, how long down
        self.fault_rng = random.Random(plan.seed + 1)  # which fault, when
        self.report = ChaosReport(plan)
        self.flows = make_flows(plan)
        self.instances: list[Instance] = []
        self.down: set[str] = set()
        secret, token, aes_key = secrets.token_hex(16), secrets.token_hex(8), random_aes_key()
        self.wecom = {
            "corp_id": CORP_ID,
            "agent_id": AGENT_ID,
            "secret": secret,
            "token": token,
            "encoding_aes_key": aes_key,
        }
        self.session_secret = secrets.token_hex(32)  # shared: one sign-in works on both
        self.sim = WeComSimulator(
            corp_id=CORP_ID,
            corp_secret=secret,
            agent_id=AGENT_ID,
            token=token,
            encoding_aes_key=aes_key,
            clock=SystemClock(),
        )
        for person in staff():
            self.sim.add_member(person["userid"], person["name"])
        self.wire = WireFaults(
            rng=random.Random(plan.seed + 2),
            latency={SEND: plan.latency, UPDATE: plan.latency},
            late_fraction=plan.late_fraction,
            late_seconds=plan.late_seconds,
        )
        self.wire.install(self.sim.app)
        self.balancer = Balancer(random.Random(plan.seed + 3), {})
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runners: dict[str, tuple[web.AppRunner, str]] = {}

    # ---- set-up ---------------------------------------------------------------------------

    def _config(self, port: int, sim_url: str, public_url: str) -> dict[str, Any]:
        return {
            "unit_name": "混沌测试单位",
            "log_level": "INFO",
            "wecom": {**self.wecom, "api_base": sim_url, "oauth_base": sim_url},
            "server": {"host": "127.0.0.1", "port": port, "public_url": public_url},
            "database": {"url": self.database_url},
            "storage": {"files_dir": str(self.workdir / "files")},
            "web": {"session_secret": self.session_secret},
            "staff": staff(),
            "chains": chains(),
        }

    async def _start(self, http: aiohttp.ClientSession) -> None:
        _, sim_url = self._runners["sim"]
        _, public_url = self._runners["balancer"]
        for name in ("a", "b"):
            port = free_port()
            data = self._config(port, sim_url, public_url)
            settings_from_mapping(data, env={})  # fail here, not in the child, on a bad config
            path = self.workdir / f"instance-{name}.toml"
            path.write_text("".join(f"{k} = {toml_value(v)}\n" for k, v in data.items()), "utf-8")
            log_path = self.workdir / f"instance-{name}.log"
            instance = Instance(name, port, self.plan.instance_argv(path), log_path)
            self.instances.append(instance)
            self.balancer.backends[name] = instance.url
        for instance in self.instances:  # both start at once on the empty database
            instance.start()
        for instance in self.instances:
            await instance.ready(http, 120)
            self.balancer.up.add(instance.name)

    # ---- people ---------------------------------------------------------------------------

    async def _wait(self, probe: Callable[[], T | None], what: str) -> T:
        """Poll `probe` until it returns something (never sleep to assert an order)."""
        deadline = time.monotonic() + self.plan.step_deadline
        while True:
            found = probe()
            if found is not None:
                return found
            if time.monotonic() > deadline:
                raise ChaosError(f"waited {self.plan.step_deadline:.0f} s for {what}")
            await asyncio.sleep(0.2)

    def _card(self, user: str, stage: str, title: str) -> str | None:
        for delivered in self.sim.inbox(user):
            if delivered.msgtype != "template_card":
                continue
            card = delivered.payload["template_card"]
            heading, subtitle = card["main_title"]["title"], card.get("sub_title_text", "")
            if heading.startswith(f"【{stage}】") and subtitle.startswith(f"《{title}》"):
                return str(card["task_id"])
        return None

    def _approved_notice(self, flow: Flow) -> bool | None:
        for delivered in self.sim.inbox(flow.submitter):
            content = delivered.payload["text"]["content"] if delivered.msgtype == "text" else ""
            if f"《{flow.title}》" in content and "已通过三审" in content:
                return True
        return None

    async def _say(self, flow: Flow) -> None:
        """The submitter sends the draft, again with the same MsgId until it is acknowledged."""
        deadline = time.monotonic() + self.plan.step_deadline
        while True:
            result = await self.sim.send_text(flow.submitter, flow.submission(), msg_id=flow.msg_id)
            if result.status == 200:
                return
            self.report.callbacks_unacknowledged += 1
            if time.monotonic() > deadline:
                raise ChaosError(f"flow {flow.number}: submission never acknowledged")
            await asyncio.sleep(0.5)

    async def _approve(self, user: str, task_id: str) -> None:
        """`user` taps 同意 on the card (as it shows now), again if the tap was not acknowledged
        and the card is still open (as a person would)."""
        deadline = time.monotonic() + self.plan.step_deadline
        while True:
            state = self.sim.card(task_id)
            if not state.is_active_for(user):
                return  # greyed: an earlier tap counted
            key = button_key(state.shown_to(user), "同意")
            if key is None:
                raise ChaosError(f"card {task_id} has no 同意 for {user}")
            try:
                result = await self.sim.click(user, task_id, key)
            except SimulatorError:
                return  # greyed meanwhile
            if result.status == 200:
                return
            self.report.callbacks_unacknowledged += 1
            if time.monotonic() > deadline:
                raise ChaosError(f"tap on {task_id} never acknowledged")
            await asyncio.sleep(0.5)

    async def _flow(self, flow: Flow, slots: asyncio.Semaphore) -> None:
        async with slots:
            try:
                await self._say(flow)
                for stage, user in zip(STAGES, flow.deciders, strict=True):
                    task_id = await self._wait(
                        functools.partial(self._card, user, stage, flow.title),
                        f"flow {flow.number}: the {stage} card to {user}",
                    )
                    await self._approve(user, task_id)
                    flow.decided += 1
                await self._wait(
                    functools.partial(self._approved_notice, flow), f"flow {flow.number}: the approval notice"
                )
                flow.done = True
                self.report.flows_done += 1
                if self.report.flows_done % 25 == 0:
                    self.progress(f"{self.report.flows_done} flows done, {self.report.kills} kills")
            except Exception as exc:  # one flow's trouble is reported, the others go on
                flow.error = f"{type(exc).__name__}: {exc}"

    # ---- chaos ----------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _kill_and_restart(
        self, instance: Instance, http: aiohttp.ClientSession, down_for: float
    ) -> None:
        self.down.add(instance.name)
        try:
            await instance.kill()
            self.report.kills += 1
            self.balancer.up.discard(instance.name)
            await asyncio.sleep(down_for)
            instance.start()
            await instance.ready(http, 120)
            self.balancer.up.add(instance.name)
        finally:
            self.down.discard(instance.name)

    async def _outage(self, seconds: float) -> None:
        self.sim.outage(503)
        await asyncio.sleep(seconds)
        self.sim.end_outage()

    def _fault(self) -> None:
        rng = self.fault_rng
        kind = rng.choice(("send errors", "send errors", "update errors", "outage", "token expiry"))
        if kind == "send errors":
            self.sim.fail_next(SEND, rng.choice((-1, 45033, 45009)), times=rng.randint(2, 6))
        elif kind == "update errors":
            self.sim.fail_next(UPDATE, -1, times=rng.randint(1, 3))
        elif kind == "outage":
            self._spawn(self._outage(rng.uniform(0.2, 1.5)))
        else:
            self.sim.expire_tokens()
        self.report.faults[kind] += 1

    async def _chaos(self, stop: asyncio.Event, http: aiohttp.ClientSession) -> None:
        """Kills at random points of the run (measured in API calls made), other faults at random
        intervals, until `stop`."""
        plan, rng = self.plan, self.kill_rng
        calls = plan.flows * CALLS_PER_FLOW
        span = 0.75 / max(plan.kills, 1)  # one kill in each stretch of the run's first 80 %
        kill_at = [(0.05 + span * (n + rng.uniform(0.1, 0.9))) * calls for n in range(plan.kills)]
        next_fault = time.monotonic() + self.fault_rng.uniform(*plan.fault_every)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.02)
            if kill_at and len(self.sim.calls) >= kill_at[0] and not self.down:
                kill_at.pop(0)
                await asyncio.sleep(rng.uniform(0, max(plan.latency, 0.1)))  # anywhere in a call
                victim = rng.choice(self.instances)
                self._spawn(self._kill_and_restart(victim, http, rng.uniform(*plan.down_for)))
            if time.monotonic() >= next_fault:
                self._fault()
                next_fault = time.monotonic() + self.fault_rng.uniform(*plan.fault_every)

    # ---- settling and counting ------------------------------------------------------------

    async def _settle(self, db: Any) -> None:
        """Faults end; wait until no outbox row is pending and the inboxes stop changing."""
        self.sim.end_outage()
        self.sim.clear_failures()
        self.wire.late_fraction = 0.0
        deadline = time.monotonic() + self.plan.settle_deadline
        quiet_since, seen = time.monotonic(), len(self.sim.calls)
        count_pending = (
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "pending")
        )
        while True:
            async with db() as session:
                pending = (await session.exec(count_pending)).one()
            if len(self.sim.calls) != seen:
                quiet_since, seen = time.monotonic(), len(self.sim.calls)
            if pending == 0 and time.monotonic() - quiet_since > max(2.0, 2 * self.plan.latency):
                return
            if time.monotonic() > deadline:
                self.report.details.append(
                    f"not settled after {self.plan.settle_deadline:.0f} s: {pending} pending"
                )
                return
            await asyncio.sleep(0.2)

    async def _count(self, db: Any) -> None:
        report = self.report
        async with db() as session:
            rows = list((await session.exec(select(OutboxMessage))).all())
            decisions = list((await session.exec(select(StageDecision))).all())
            drafts = list((await session.exec(select(Draft))).all())
        report.outbox_status = Counter(f"{row.op} {row.status}" for row in rows)
        report.given_up = [
            f"outbox {row.id} {row.op} {row.status}: {row.last_error}"
            for row in rows
            if row.status not in ("sent", "pending")
        ]
        expected: Counter[tuple[str, str, str]] = Counter()
        for row in rows:
            if row.op != "send":
                continue
            kind = str(row.payload["msgtype"])
            for userid in filter(None, row.recipients.split("|")):
                expected[(userid, kind, _message_key(kind, row.payload))] += 1
        delivered: Counter[tuple[str, str, str]] = Counter()
        for userid in self.sim.members:
            for item in self.sim.inbox(userid):
                delivered[(userid, item.msgtype, _message_key(item.msgtype, item.payload))] += 1
        report.messages_expected = len(expected)
        report.queued_twice = sum(n - 1 for n in expected.values() if n > 1)
        report.delivered_once = sum(1 for key in expected if delivered[key] == 1)
        report.duplicates = sum(n - 1 for n in delivered.values() if n > 1)
        report.lost = sum(1 for key in expected if delivered[key] == 0)
        report.unexpected = sum(n for key, n in delivered.items() if key not in expected)
        report.dropped_by_limit = len(self.sim.dropped)
        for key, n in sorted(delivered.items()):
            if n > 1:
                report.details.append(f"delivered {n}×: {key}")
        for key in sorted(expected):
            if delivered[key] == 0:
                report.details.append(f"lost: {key}")
        report.decisions_expected = sum(flow.decided for flow in self.flows)
        report.decisions_recorded = len(decisions)
        slots = {(d.draft_id, d.version, d.round, d.stage) for d in decisions}
        report.decisions_distinct = len(slots)
        report.drafts_approved = sum(1 for d in drafts if d.status == "approved")
        for flow in self.flows:
            for stage, user in zip(STAGES, flow.deciders, strict=True):
                task = self._card(user, stage, flow.title)
                report.cards_left_open += bool(task and self.sim.card(task).is_active_for(user))
        report.details.extend(f"flow {f.number}: {f.error}" for f in self.flows if f.error)

    async def run(self) -> ChaosReport:
        """Start everything, drive the flows under chaos, settle, count; always clean up."""
        started = time.monotonic()
        engine = make_engine(self.database_url)
        try:
            async with aiohttp.ClientSession() as http:
                self._runners["sim"] = await serve(self.sim.app)
                self._runners["balancer"] = await serve(self.balancer.app)
                self.sim.callback_url = self._runners["balancer"][1] + CALLBACK_PATH
                await self._start(http)
                up = time.monotonic() - started
                self.progress(f"both instances up ({up:.1f} s); {self.plan.flows} flows")
                stop = asyncio.Event()
                chaos = asyncio.create_task(self._chaos(stop, http))
                slots = asyncio.Semaphore(self.plan.concurrency)
                await asyncio.gather(*(self._flow(flow, slots) for flow in self.flows))
                stop.set()
                await chaos
                while self._tasks:  # restarts and outages in progress
                    await asyncio.gather(*list(self._tasks))
                self.progress(f"flows over ({time.monotonic() - started:.0f} s); settling")
                db = make_session_factory(engine)
                await self._settle(db)
                self.report.wall_seconds = time.monotonic() - started
                await self._count(db)
                await self.balancer.close()  # its kept-alive connections would delay the stop
                await asyncio.gather(*(instance.stop() for instance in self.instances))
                self.progress(f"stopped ({time.monotonic() - started:.0f} s)")
        finally:
            for task in list(self._tasks):
                task.cancel()
            for instance in self.instances:
                await instance.kill()
            for runner, _ in self._runners.values():
                await runner.cleanup()
            await self.balancer.close()
            await self.sim.close()
            await engine.dispose()
        self.report.late_answers = self.wire.late_answers
        self.report.failovers = self.balancer.failovers
        return self.report


def _message_key(kind: str, payload: dict[str, Any]) -> str:
    """What identifies one message to one person: a card's task_id, else its content."""
    part = payload.get(kind, {})
    key = part.get("task_id") or part.get("content") or part.get("media_id")
    return str(key or json.dumps(part, sort_keys=True))


# ---- a database of its own --------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new, uniquely named PostgreSQL database for one run, dropped afterwards (named like the
    tests' databases, so a run killed before its clean-up is dropped by the next test run)."""
    name = f"sanshen_t_{os.getpid()}_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


# ---- command line -----------------------------------------------------------------------------


def serve_scaled(
    config: str, client_timeout: float | None, claim_seconds: float | None, backoff_seconds: float | None
) -> int:
    """A child process: `sanshen serve` with the HTTP timeout, outbox claim and first back-off
    shrunk (for a short run), nothing else changed."""
    import bot.app
    from bot.cli.main import main

    if claim_seconds is not None:
        outbox_module.CLAIM_FOR = timedelta(seconds=claim_seconds)
    if backoff_seconds is not None:
        outbox_module.FIRST_BACKOFF_SECONDS = backoff_seconds  # type: ignore[assignment]
    if client_timeout is not None:
        shortened = client_timeout

        class ShortTimeoutClient(WeComClient):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **{**kwargs, "timeout": shortened})

        bot.app.WeComClient = ShortTimeoutClient  # type: ignore[misc]
    return main(["serve", "-c", config])


async def _main(plan: ChaosPlan) -> ChaosReport:
    def say(line: str) -> None:
        sys.stdout.write(f"[chaos] {line}\n")
        sys.stdout.flush()

    say(f"seed {plan.seed}, {plan.flows} flows, {plan.kills} kills, latency {plan.latency} s")
    with tempfile.TemporaryDirectory(prefix="sanshen-chaos-") as folder:
        async with fresh_database() as url:
            run = ChaosRun(plan, url, Path(folder), progress=say)
            try:
                return await run.run()
            except BaseException:
                for instance in run.instances:
                    sys.stderr.write(f"--- {instance.name} log tail ---\n{instance.tail()}\n")
                raise


def _flags(plan: ChaosPlan) -> list[str]:
    """The command-line flags that repeat `plan`'s run."""
    flags = [f"--flows {plan.flows}", f"--seed {plan.seed}", f"--kills {plan.kills}"]
    defaults = ChaosPlan()
    names = ("latency", "late_fraction", "concurrency", "client_timeout", "claim_seconds", "backoff_seconds")
    for name in names:
        if getattr(plan, name) != getattr(defaults, name):
            flags.append(f"--{name.replace('_', '-')} {getattr(plan, name)}")
    return flags


def main(argv: Sequence[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=summary)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="random by default; printed")
    parser.add_argument("--kills", type=int, default=None, help="default: one per 10 flows")
    parser.add_argument("--latency", type=float, default=1.5, help="seconds a send or update takes")
    parser.add_argument("--late-fraction", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--instance", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--client-timeout", type=float, default=None)
    parser.add_argument("--claim-seconds", type=float, default=None)
    parser.add_argument("--backoff-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    if args.instance:
        return serve_scaled(args.instance, args.client_timeout, args.claim_seconds, args.backoff_seconds)
    plan = ChaosPlan(
        flows=args.flows,
        seed=args.seed if args.seed is not None else random.randrange(1, 10**6),
        kills=args.kills if args.kills is not None else max(1, args.flows // 10),
        latency=args.latency,
        late_fraction=args.late_fraction,
        concurrency=args.concurrency,
        client_timeout=args.client_timeout,
        claim_seconds=args.claim_seconds,
        backoff_seconds=args.backoff_seconds,
    )
    report = asyncio.run(_main(plan))
    sys.stdout.write("\n.venv/bin/python -m bench.chaos " + " ".join(_flags(plan)) + "\n\n")
    sys.stdout.write(report.table() + "\n")
    problems = report.problems()
    if problems:
        sys.stdout.write("\nPROBLEMS:\n" + "".join(f"- {p}\n" for p in problems))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
