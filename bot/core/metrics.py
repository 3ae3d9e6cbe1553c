"""The bot's Prometheus metrics (one registry per process, served at /metrics): callbacks by outcome
and their handling time, WeCom error codes, sweep durations, and the outbox and draft gauges that
/metrics fills from the database when it is scraped."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

CALLBACKS = Counter(
    "sanshen_callbacks",
    "WeCom callbacks received, by outcome (ok, or why they were refused).",
    ["outcome"],
    registry=REGISTRY,
)
CALLBACK_SECONDS = Histogram(
    "sanshen_callback_seconds",
    "Time to answer a WeCom callback (a decision is recorded within it).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
WECOM_ERRORS = Counter(
    "sanshen_wecom_errors",
    "WeCom API answers with a non-zero errcode, by path and errcode.",
    ["path", "errcode"],
    registry=REGISTRY,
)
WECOM_CALLS = Counter(
    "sanshen_wecom_calls",
    "WeCom API calls answered errcode 0, by path.",
    ["path"],
    registry=REGISTRY,
)
SWEEP_SECONDS = Histogram(
    "sanshen_sweep_seconds",
    "Duration of one scheduled sweep, by sweep.",
    ["sweep"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
SWEEP_FAILURES = Counter(
    "sanshen_sweep_failures",
    "Sweeps that raised (the others still ran).",
    ["sweep"],
    registry=REGISTRY,
)
OUTBOX_MESSAGES = Gauge(
    "sanshen_outbox_messages",
    "Outbox rows by status (pending, failed, expired …), read at scrape time.",
    ["status"],
    registry=REGISTRY,
)
OUTBOX_FAILED = Gauge(
    "sanshen_outbox_failed_by_reason",
    "Failed outbox rows by their error's errcode (or 'other').",
    ["reason"],
    registry=REGISTRY,
)
OUTBOX_OLDEST_PENDING = Gauge(
    "sanshen_outbox_oldest_pending_seconds",
    "Age of the oldest message due and not yet sent.",
    registry=REGISTRY,
)
DRAFTS = Gauge(
    "sanshen_drafts",
    "Drafts by status, and those in review by stage, read at scrape time.",
    ["status", "stage"],
    registry=REGISTRY,
)
