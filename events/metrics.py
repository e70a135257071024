"""Prometheus metrics of the bus (served by the gateway at /metrics)."""

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PUBLISHED = Counter("haunted_outbox_published_total", "Outbox events acked by the broker")
OUTBOX_FAILED = Counter(
    "haunted_outbox_publish_failures_total", "Outbox batches the broker refused"
)
OUTBOX_PENDING = Gauge("haunted_outbox_pending", "Outbox events waiting in the last batch read")
EVENTS_HANDLED = Counter(
    "haunted_events_handled_total", "Events handled by consumers", ["consumer", "type", "outcome"]
)
HANDLE_SECONDS = Histogram("haunted_event_handle_seconds", "Time to handle one event", ["consumer"])
