"""A running bot wired to the WeCom simulator over loopback HTTP (used by the demo and tests)."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import socket
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.app import create_app
from bot.core.clock import Clock
from bot.core.config import Settings, StorageSettings, default_chains, settings_from_mapping
from bot.keys import DB, DISPATCHER, SENDER, SWEEPER
from bot.simulator import WeComSimulator

DEMO_STAFF: tuple[dict[str, Any], ...] = (
    {"userid": "wangxm", "name": "王小明", "roles": ["collector", "duty"]},
    {"userid": "zhaoli", "name": "赵丽", "roles": ["collector", "duty"]},
    {"userid": "zhangkz", "name": "张科长", "roles": ["reviewer"]},
    {"userid": "sunkz", "name": "孙科长", "roles": ["reviewer"]},
    {"userid": "liuzr", "name": "刘主任", "roles": ["leader"]},
    {"userid": "chenfb", "name": "陈发布", "roles": ["publisher", "admin"]},
)


def random_aes_key() -> str:
    """A valid 43-character EncodingAESKey."""
    return base64.b64encode(os.urandom(32)).decode()[:-1].replace("+", "A").replace("/", "B")


def review_chains(*, proofreading: bool) -> list[dict[str, Any]]:
    """The Qinzhou chains for every category, with 三校 on (the product) or explicitly off (the
    tests of 三审 mechanics, which then need no proofreaders in between)."""
    return [
        {**chain.model_dump(exclude={"proofs"} if not proofreading else set()), "proofreading": proofreading}
        for chain in default_chains()
    ]


def stack_settings(
    database_url: str, overrides: Mapping[str, Any] | None = None, *, proofreading: bool = False
) -> Settings:
    """Settings for a bot that talks to a simulator (api_base is filled in at start); 三校 only
    when asked for, so a test of 三审 alone goes straight from stage to stage."""
    data: dict[str, Any] = {
        "chains": review_chains(proofreading=proofreading),
        "unit_name": "示范市人民政府办公室",
        "wecom": {
            "corp_id": "wwdemo0000000001",
            "agent_id": 1000002,
            "secret": secrets.token_hex(16),
            "token": secrets.token_hex(8),
            "encoding_aes_key": random_aes_key(),
            "api_base": "http://127.0.0.1:1",
        },
        "database": {"url": database_url},
        "staff": list(DEMO_STAFF),
    }
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return settings_from_mapping(data, env={})


@dataclass
class Stack:
    settings: Settings
    sim: WeComSimulator
    app: web.Application
    bot_url: str
    clock: Clock
    run_sender: bool = False
    _runner: web.AppRunner | None = None

    async def restart_bot(self) -> None:
        """Stop the bot without delivering anything (a crash, as far as the outbox knows)
        and start a fresh one on the same database and simulator."""
        if self._runner is not None:
            await self._runner.cleanup()
        self.app = create_app(self.settings, clock=self.clock, run_sender=self.run_sender)
        port = int(self.bot_url.rsplit(":", 1)[1])
        self._runner, self.bot_url = await _serve(self.app, _listen(port))
        self.sim.callback_url = self.bot_url + self.settings.server.callback_path

    async def drain(self) -> None:
        """Deliver every outbox message that is due now."""
        await self.app[SENDER].drain()

    async def sweep(self) -> int:
        """Run every scheduled sweep once at the clock's reading, then deliver what it queued."""
        fired = await self.app[SWEEPER].run_once()
        await self.drain()
        return fired

    @property
    def db(self) -> Any:
        return self.app[DB]

    @property
    def dispatcher(self) -> Any:
        return self.app[DISPATCHER]


def _listen(port: int = 0) -> socket.socket:
    """A loopback listening socket, so the bot's address is known before the bot is built."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


async def _serve(app: web.Application, sock: socket.socket | None = None) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.SockSite(runner, sock or _listen())
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings, clock: Clock, *, run_sender: bool = False
) -> AsyncIterator[Stack]:
    """Start the simulator and the bot on loopback ports; stop both on exit."""
    sim = WeComSimulator(
        corp_id=settings.wecom.corp_id,
        corp_secret=settings.wecom.secret,
        agent_id=settings.wecom.agent_id,
        token=settings.wecom.token,
        encoding_aes_key=settings.wecom.encoding_aes_key,
        clock=clock,
    )
    for member in settings.staff:
        sim.add_member(member.userid, member.name)
    sim_runner, sim_url = await _serve(sim.app)
    files = contextlib.ExitStack()
    try:
        sock = _listen()
        bot_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        storage = settings.storage
        if storage.files_dir == StorageSettings().files_dir:  # not chosen: a folder for this run
            folder = files.enter_context(tempfile.TemporaryDirectory(prefix="sanshen-files-"))
            storage = storage.model_copy(update={"files_dir": folder})
        bound = settings.model_copy(
            update={
                "wecom": settings.wecom.model_copy(update={"api_base": sim_url, "oauth_base": sim_url}),
                "server": settings.server.model_copy(
                    update={"public_url": settings.server.public_url or bot_url}
                ),
                "storage": storage,
            }
        )
        app = create_app(bound, clock=clock, run_sender=run_sender)
        bot_runner, bot_url = await _serve(app, sock)
        stack = Stack(bound, sim, app, bot_url, clock, run_sender, bot_runner)
        try:
            sim.callback_url = bot_url + bound.server.callback_path
            yield stack
        finally:
            if stack._runner is not None:
                await stack._runner.cleanup()
            files.close()
    finally:
        await sim_runner.cleanup()
        close = getattr(sim, "close", None)
        if close is not None:
            await close()
