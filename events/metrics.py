"""Prometheus metrics of the bus and the services (served at /metrics by every process)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PUBLISHED = Counter("haunted_outbox_published_total", "Outbox events acked by the broker")
OUTBOX_FAILED = Counter(
    "haunted_outbox_publish_failures_total", "Outbox batches the broker refused"
)
OUTBOX_PENDING = Gauge("haunted_outbox_pending", "Outbox events not yet acked by the broker")
OUTBOX_OLDEST_PENDING = Gauge(
    "haunted_outbox_oldest_pending_seconds", "Age of the oldest outbox event not yet published"
)
RELAY_LEADING = Gauge(
    "haunted_outbox_relay_leading", "1 while this process's relay holds the relay lock"
)
RELAY_RESTARTS = Counter(
    "haunted_outbox_relay_restarts_total", "Times the relay restarted after a failure"
)
EVENTS_HANDLED = Counter(
    "haunted_events_handled_total", "Events handled by consumers", ["consumer", "type", "outcome"]
)
HANDLE_SECONDS = Histogram("haunted_event_handle_seconds", "Time to handle one event", ["consumer"])
DEAD_LETTERS = Counter(
    "haunted_dead_letters_total",
    "Records a consumer group sent to <topic>.dlq (errors that will repeat, never outages)",
    ["consumer", "topic"],
)
CONSUMER_WAITS = Counter(
    "haunted_consumer_outage_waits_total",
    "Times a consumer group paused to wait out a dependency that was away",
    ["consumer"],
)
BUS_CONNECTED = Gauge(
    "haunted_bus_connected",
    "1 once this process's producer and consumer groups are up; 0 while the broker is away",
)
PUBLISH_SECONDS = Histogram(
    "haunted_outbox_publish_seconds",
    "Relay: from the last send of a batch queued to every ack of it received",
)
QUERY_SECONDS = Histogram(
    "haunted_db_query_seconds",
    "Database statements, by their first keyword",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
QUERY_ERRORS = Counter("haunted_db_errors_total", "Database statements that raised")

# Shared by the services (which may import events, never each other): one name per
# kind of measure, the service in a label.
CACHES = ("documents", "apq", "roles", "sessions", "analytics_answers", "llm_answers", "flags")
CACHE_REQUESTS = Counter(
    "haunted_cache_requests_total", "Cache look-ups by cache and result", ["cache", "result"]
)
for _cache in CACHES:
    for _result in ("hit", "miss", "error"):
        CACHE_REQUESTS.labels(_cache, _result)

EXTERNAL_SYSTEMS = ("stripe", "openai", "unleash")
EXTERNAL_REQUESTS = Counter(
    "haunted_external_requests_total",
    "Calls to outside APIs by system and outcome",
    ["system", "outcome"],
)
EXTERNAL_SECONDS = Histogram(
    "haunted_external_request_seconds", "Calls to outside APIs, by system", ["system"]
)
for _system in EXTERNAL_SYSTEMS:
    for _outcome in ("ok", "error"):
        EXTERNAL_REQUESTS.labels(_system, _outcome)


@contextmanager
def external_call(system: str) -> Iterator[None]:
    """Counts one call to `system` as ok, or error when it raises, and times it."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        EXTERNAL_REQUESTS.labels(system, outcome).inc()
        EXTERNAL_SECONDS.labels(system).observe(time.perf_counter() - started)


TOKENS_ISSUED = Counter("haunted_tokens_issued_total", "Access tokens signed")
TOKENS_VERIFIED = Counter(
    "haunted_tokens_verified_total", "Access token verifications by outcome", ["outcome"]
)
for _outcome in ("valid", "cached", "invalid"):
    TOKENS_VERIFIED.labels(_outcome)

STRIPE_WEBHOOKS = Counter(
    "haunted_stripe_webhooks_total", "Stripe webhook deliveries by outcome", ["outcome"]
)
for _outcome in ("processed", "duplicate", "ignored", "invalid", "failed"):
    STRIPE_WEBHOOKS.labels(_outcome)

LLM_TOKENS = Counter(
    "haunted_llm_tokens_total",
    "LLM tokens by model, team plan and kind (prompt, completion)",
    ["model", "plan", "kind"],
)
LLM_COST = Counter(
    "haunted_llm_cost_usd_total",
    "LLM spend in US dollars by model and team plan",
    ["model", "plan"],
)
