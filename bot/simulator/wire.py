"""The simulator on a loopback port with faults on the wire: latency per API call and answers
that come later than the caller waits (the work is done; only the answer is late)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from bot.simulator.wecom import API

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class WireFaults:
    """What the network and WeCom's own slowness do to qyapi calls, for a served simulator.

    `latency` maps a path under /cgi-bin (e.g. "/message/send") to the seconds a call takes
    before WeCom does its work (a request in transit: a caller killed meanwhile still has its
    message delivered). A `late_fraction` share of calls to the paths in `late_paths` then
    answers `late_seconds` after the work is done, so a client with a shorter timeout gives up
    on a call that succeeded. Install before the app is served; change the numbers any time.
    """

    rng: random.Random
    latency: Mapping[str, float] = field(default_factory=dict)
    late_paths: frozenset[str] = frozenset({"/message/send"})
    late_fraction: float = 0.0
    late_seconds: float = 0.0
    late_answers: int = 0  # how many answers were made late so far

    def install(self, app: web.Application) -> None:
        """Add the faults to `app` (the simulator's `.app`), before it is served."""
        app.middlewares.append(self._middleware)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path.removeprefix(API)
        delay = self.latency.get(path, 0.0)
        if delay > 0:
            await request.read()  # received in full: the work happens even if the caller dies now
            await asyncio.sleep(delay)
        response = await handler(request)
        late = path in self.late_paths and self.late_fraction > 0
        if late and self.rng.random() < self.late_fraction:
            self.late_answers += 1
            await asyncio.sleep(self.late_seconds)
        return response


async def serve(app: web.Application, port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve `app` on 127.0.0.1 (`port` 0: any free one); returns the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    bound = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{bound}"
