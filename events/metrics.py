"""Prometheus metrics of the bus (served by the gateway at /metrics)."""

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
