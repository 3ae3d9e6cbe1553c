"""/healthz says what an operator must know (database, outbox backlog, WeCom, scheduler) and turns
503 degraded with reasons; /metrics is Prometheus text that counts what happened exactly."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

import bot.app
from bot.app import create_app, on_health
from bot.cli.stack import Stack
from tests.flow import say, tap
from tests.test_callback_security import text_xml
from tests.test_outbox_delivery import queue_texts
from tests.test_review_flow import SUBMISSION


async def scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as http, http.get(f"{stack.bot_url}/metrics") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def health(stack: Stack) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(f"{stack.bot_url}/healthz") as resp:
        return resp.status, await resp.json()


async def test_metrics_count_a_known_sequence(stack: Stack) -> None:
    before = await scrape(stack)

    def delta(after: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    await say(stack, "wangxm", SUBMISSION)  # one callback
    await tap(stack, "wangxm", "同意")  # two: 一审 decided, the draft waits at 二审
    forged = await stack.sim.post_raw(text_xml(stack, "wangxm", "/status"), tamper_signature=True)
    assert forged.status == 403
    stack.sim.fail_next("/message/send", 40058, times=1)  # one send refused for good
    await queue_texts(stack, "zhangkz", ["测试"])
    await stack.drain()
    after = await scrape(stack)
    assert delta(after, "sanshen_callbacks_total", outcome="ok") == 2
    assert delta(after, "sanshen_callbacks_total", outcome="bad signature") == 1
    assert delta(after, "sanshen_callback_seconds_count") == 3
    assert delta(after, "sanshen_wecom_errors_total", path="/cgi-bin/message/send", errcode="40058") == 1
    assert after[("sanshen_drafts", (("stage", "2"), ("status", "in_review")))] == 1
    assert after[("sanshen_outbox_failed_by_reason", (("reason", "40058"),))] == 1
    assert after[("sanshen_outbox_messages", (("status", "failed"),))] == 1
    await stack.sweep()
    swept = await scrape(stack)
    assert swept[("sanshen_sweep_seconds_count", (("sweep", "freshness_warnings"),))] >= 1


async def test_health_reports_each_part_and_degrades_with_reasons(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, body = await health(stack)
    assert status == 200 and body["status"] == "ok" and body["database"] == "ok"
    assert body["outbox"] == {"pending": 0, "failed": 0, "oldest_pending_seconds": 0}
    assert body["scheduler"] == {"running": False, "last_sweep": None}
    await stack.sweep()
    status, body = await health(stack)
    assert body["scheduler"]["last_sweep"] == stack.clock.now().isoformat()  # type: ignore[index]
    assert body["wecom"]["last_ok"] is not None  # type: ignore[index]

    stack.sim.outage(503)  # WeCom unreachable: the message waits, retried
    await queue_texts(stack, "wangxm", ["积压"])
    await stack.drain()
    stack.clock.advance(minutes=16)  # type: ignore[attr-defined]
    status, body = await health(stack)
    assert status == 503 and body["status"] == "degraded"
    assert "outbox: the oldest due message has waited 960s" in str(body["reason"])
    stack.sim.end_outage()

    async def unreachable(*_: object) -> object:
        raise OSError("connection refused")

    monkeypatch.setattr(bot.app, "outbox_state", unreachable)
    status, body = await health(stack)
    assert (
        status == 503
        and body["database"] == "unreachable (OSError)"
        and "database unreachable" in str(body["reason"])
    )


async def test_a_scheduler_that_stopped_sweeping_is_degraded(stack: Stack) -> None:
    second = create_app(stack.settings, clock=stack.clock, run_sender=False, run_scheduler=True)
    runner = aiohttp.web.AppRunner(second)
    await runner.setup()  # the scheduler starts on real time: it does not sweep within this test
    try:
        response = await on_health(make_mocked_request("GET", "/healthz", app=second))
        assert response.status == 200
        stack.clock.advance(seconds=3 * stack.settings.scheduler.sweep_seconds + 61)  # type: ignore[attr-defined]
        response = await on_health(make_mocked_request("GET", "/healthz", app=second))
        assert response.status == 503 and b"scheduler: no sweep since" in response.body  # type: ignore[operator]
    finally:
        await runner.cleanup()
