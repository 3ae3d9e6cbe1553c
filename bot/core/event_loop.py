"""The event loop a server process runs on: uvloop (libuv) where it is installed, asyncio's own otherwise."""

from __future__ import annotations

import asyncio


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop for `serve`: uvloop runs the same aiohttp server and asyncpg connections with
    less of the interpreter per socket event (bench.bench_callback: /help about 1.5× as many
    a second on one core); asyncio's loop where uvloop has no build (Windows)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
