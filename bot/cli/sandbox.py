"""`sanshen sandbox -c config.toml`: a training sandbox in the browser — one simulated phone per person
of the unit, on the real bot, the built-in WeCom simulator and a temporary database."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.cli.demo import submit_word_draft
from bot.cli.rehearsal import handover_clock, rehearsal_settings, signing_plan
from bot.cli.stack import Stack, running_stack
from bot.core.clock import FrozenClock
from bot.core.config import Settings
from bot.core.roles import role_names
from bot.rules.calendar import fmt_local, local_at, local_day, people_with_role
from bot.simulator import SimulatorError, render
from bot.simulator.wecom import SIM_USER_COOKIE, Delivered
from bot.web.auth import SESSION_COOKIE

PAGE = Path(__file__).with_name("sandbox.html")
SAMPLE_DRAFT = (
    "/submit 关于开展演练期间网站巡查的通知\n来源：本机关制发\n公开：主动公开\n平台：政府网站\n"
    "各科室：\n为熟悉三审三校流程，请按收到的卡片逐级审核。本通知仅用于演练。"
)
DEADLINE_DAYS = 15  # the 14-day scenario moves on a day at a time, at most this far
REAL_WECOM_REFUSAL = (
    "wecom.api_base: 演练环境不连接真实的企业微信。请用演练专用的配置（把 [wecom] api_base 改为 "
    '"http://sandbox.invalid"），或运行 SANSHEN_WECOM_API_BASE=http://sandbox.invalid sanshen sandbox -c 配置文件'
)


class ScenarioError(Exception):
    """A scenario cannot run with this unit's configuration (Chinese message for the trainer)."""


class Sandbox:
    """The sandbox's pages and actions over one running stack; one action at a time, each
    followed by the deliveries it caused."""

    def __init__(self, stack: Stack, clock: FrozenClock) -> None:
        self.stack = stack
        self.clock = clock
        self._lock = asyncio.Lock()
        self.reset_asked = asyncio.Event()  # serve_sandbox starts afresh when it is set

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/inbox", self._inbox)
        app.router.add_post("/api/say", self._say)
        app.router.add_post("/api/tap", self._tap)
        app.router.add_post("/api/scenario", self._scenario)
        app.router.add_get("/open", self._open)
        app.router.add_post("/api/reset", self._reset)
        return app

    # ---- what a phone shows ---------------------------------------------------------------

    def people(self) -> list[dict[str, str]]:
        return [
            {"userid": m.userid, "name": m.name, "roles": role_names(m.roles)}
            for m in self.stack.settings.staff
        ]

    def message(self, delivered: Delivered) -> dict[str, Any]:
        """One delivered message as the phone page draws it."""
        sim = self.stack.sim
        local = delivered.at.astimezone(self.stack.settings.tz)
        shown: dict[str, Any] = {"at": f"{local:%m-%d %H:%M}", "kind": delivered.msgtype}
        if delivered.msgtype != "template_card":
            return {**shown, "kind": "text", "text": render(delivered, sim)}
        sent = delivered.payload["template_card"]
        state = sim.card(sent["task_id"])
        return {
            **shown,
            "task_id": state.task_id,
            "card": state.shown_to(delivered.userid),
            "active": state.is_active_for(delivered.userid),
            "greyed": state.greyed.get(delivered.userid, ""),
        }

    async def _page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html")

    async def _state(self, request: web.Request) -> web.Response:
        settings = self.stack.settings
        now = self.clock.now().astimezone(settings.tz)
        return web.json_response(
            {"unit": settings.unit_name, "now": f"{now:%Y-%m-%d %H:%M}", "people": self.people()}
        )

    async def _inbox(self, request: web.Request) -> web.Response:
        userid = request.query.get("user", "")
        if userid not in self.stack.settings.staff_by_id:
            return _refused("没有这个人", status=404)
        return web.json_response([self.message(d) for d in self.stack.sim.inbox(userid)])

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset_asked.set()
        return web.json_response({"ok": True, "note": "演练环境正在重置"})

    async def _open(self, request: web.Request) -> web.StreamResponse:
        """A link on a card, opened on `user`'s phone: the bot's page signs that person in through
        the simulator's 网页授权. All three servers share the host 127.0.0.1, so their cookies are
        shared: the simulator's "who holds the phone" is set to `user`, and the bot's session of
        whoever opened a page before is dropped, so the bot asks WeCom again."""
        userid, target = request.query.get("user", ""), request.query.get("url", "")
        if userid not in self.stack.settings.staff_by_id or not target.startswith(
            self.stack.bot_url + "/app/"
        ):
            return _refused("无法打开该链接", status=404)
        response = web.HTTPFound(target)
        response.set_cookie(SIM_USER_COOKIE, userid, path="/", httponly=True, samesite="Lax")
        response.del_cookie(SESSION_COOKIE, path="/app")
        raise response

    # ---- what a person does ---------------------------------------------------------------

    async def _say(self, request: web.Request) -> web.Response:
        body = await _body(request)
        userid, text = str(body.get("user", "")), str(body.get("text", "")).strip()
        if userid not in self.stack.settings.staff_by_id or not text:
            return _refused("请选择人员并输入内容")
        async with self._lock:
            await self.stack.sim.send_text(userid, text)
            await self.stack.drain()
        return web.json_response({"ok": True})

    async def _tap(self, request: web.Request) -> web.Response:
        body = await _body(request)
        userid, task_id, key = (str(body.get(k, "")) for k in ("user", "task_id", "key"))
        async with self._lock:
            try:
                await self.stack.sim.click(userid, task_id, key)
            except SimulatorError:
                return _refused("这张卡片已不能点击（已处理或已置灰）")
            await self.stack.drain()
        return web.json_response({"ok": True})

    async def _scenario(self, request: web.Request) -> web.Response:
        name = str((await _body(request)).get("name", ""))
        scenario = {
            "submit": self.submit_sample,
            "submit_word": self.submit_word_sample,
            "hour": self.next_hour,
            "handover": self.next_handover,
            "deadline": self.approach_deadline,
            "incident": self.unanswered_incident,
        }.get(name)
        if scenario is None:
            return _refused("没有这个场景")
        async with self._lock:
            try:
                note = await scenario()
            except ScenarioError as exc:
                return _refused(str(exc))
        return web.json_response({"ok": True, "note": note})

    # ---- scenarios -----------------------------------------------------------------------

    async def submit_sample(self) -> str:
        """The first 审 stage's planned signer submits a short sample draft (their own 一审)."""
        submitter = signing_plan(self.stack.settings, "issued")[1]
        await self.stack.sim.send_text(submitter, SAMPLE_DRAFT)
        await self.stack.drain()
        return f"{self.stack.settings.name_of(submitter)}已投稿样稿"

    async def submit_word_sample(self) -> str:
        """The same person submits the sample Word draft (a table and a picture) on the 投稿 page."""
        submitter = signing_plan(self.stack.settings, "issued")[1]
        await submit_word_draft(self.stack, submitter)
        await self.stack.drain()
        return f"{self.stack.settings.name_of(submitter)}已在投稿页面提交 Word 样稿"

    async def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)
        await self.stack.sweep()

    async def next_hour(self) -> str:
        await self.advance(timedelta(hours=1))
        return "时间快进 1 小时"

    async def next_handover(self) -> str:
        settings = self.stack.settings
        now = self.clock.now()
        today = local_day(now, settings.tz)
        handover = local_at(today, settings.duty.handover_time, settings.tz)
        if handover <= now:  # today's has passed: tomorrow's
            handover = local_at(today + timedelta(days=1), settings.duty.handover_time, settings.tz)
        await self.advance(handover - now + timedelta(minutes=1))
        return f"时间快进到交班 {fmt_local(handover, settings.tz)}"

    async def approach_deadline(self) -> str:
        """Day by day until an account's owner is warned before the 14×24 h deadline."""
        before = self._count("【更新提醒】")
        for day in range(1, DEADLINE_DAYS + 1):
            await self.advance(timedelta(days=1))
            if self._count("【更新提醒】") > before:
                return f"时间快进 {day} 天：账号负责人收到更新提醒"
        raise ScenarioError("没有需要提醒的账号：请在配置中登记政务新媒体账号（[freshness] accounts）")

    async def unanswered_incident(self) -> str:
        """Someone on duty reports an incident and nobody taps 收到 for a quarter of an hour."""
        settings = self.stack.settings
        reporter = next(iter(people_with_role(settings, "duty")), settings.staff[0].userid)
        await self.stack.sim.send_text(reporter, "/alert 演练：网站首页出现异常链接，疑似被篡改")
        await self.stack.drain()
        minutes = settings.duty.incident_escalate_minutes
        for _ in range(0, minutes, settings.duty.incident_repeat_minutes):
            await self.advance(timedelta(minutes=settings.duty.incident_repeat_minutes))
        return f"{settings.name_of(reporter)}报告突发事件，{minutes} 分钟无人确认"

    def _count(self, needle: str) -> int:
        return sum(
            1
            for m in self.stack.settings.staff
            for d in self.stack.sim.inbox(m.userid)
            if d.msgtype == "text" and needle in d.payload["text"]["content"]
        )


def _refused(message: str, *, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@contextlib.asynccontextmanager
async def running_sandbox(
    settings: Settings, folder: Path, *, port: int = 0
) -> AsyncIterator[tuple[Sandbox, str]]:
    """The bot, the simulator and the sandbox's own pages on loopback; yields the pages' URL."""
    clock = handover_clock(settings)
    async with running_stack(rehearsal_settings(settings, folder), clock) as stack:
        sandbox = Sandbox(stack, clock)
        runner = web.AppRunner(sandbox.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        try:
            yield sandbox, f"http://127.0.0.1:{runner.addresses[0][1]}/"
        finally:
            await runner.cleanup()


async def serve_sandbox(settings: Settings, port: int, *, stop: asyncio.Event | None = None) -> int:
    """Run until interrupted (or `stop`), printing where to open it; 重置 starts everything
    afresh on the same port: a new database, simulator and clock."""
    stop = stop or asyncio.Event()
    first = True
    while not stop.is_set():
        with tempfile.TemporaryDirectory(prefix="sanshen-sandbox-") as folder:
            async with running_sandbox(settings, Path(folder), port=port) as (sandbox, url):
                if first:
                    sys.stdout.write(
                        f"演练环境已启动：{settings.unit_name}，{len(settings.staff)} 人。在浏览器打开 {url}\n"
                        "（模拟企业微信与临时数据库，不会发送到真实企业微信；按 Ctrl+C 结束，演练数据随之删除）\n"
                    )
                    sys.stdout.flush()
                    first = False
                stopping = asyncio.ensure_future(stop.wait())
                resetting = asyncio.ensure_future(sandbox.reset_asked.wait())
                await asyncio.wait({stopping, resetting}, return_when=asyncio.FIRST_COMPLETED)
                for waiter in (stopping, resetting):
                    waiter.cancel()
    return 0
