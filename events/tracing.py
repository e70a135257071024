"""Trace context across Kafka: W3C `traceparent`/`tracestate` beside the `ce_*` headers.

Spans follow the OpenTelemetry messaging conventions: the relay's `publish`
span is a child of the context stored with the outbox row (the request that
added the event); a consumer processing one record starts a `process` span
whose parent is the record's context; a batch gets one `process` span linked
to its records' contexts. A record without `traceparent` starts a new trace.

Nothing here configures a tracer provider: the composition root does that
(haunted/telemetry.py). Until it does, every span is a non-recording no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from events.envelope import Envelope

TRACER = trace.get_tracer("haunted.events")
# Only the W3C trace context: baggage (whatever a caller put in it) never goes to Kafka.
PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = ("traceparent", "tracestate")
MAX_LINKS = 128  # the SDK's default span link limit: more would be dropped anyway

SYSTEM = {"messaging.system": "kafka"}


def current_trace_context() -> dict[str, str] | None:
    """The current span's context as W3C headers, or None outside a sampled-or-not span."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    return carrier or None


def inject(headers: dict[str, str], context: Context | None = None) -> None:
    """Adds `traceparent`/`tracestate` of `context` (default: the current one) to `headers`."""
    PROPAGATOR.inject(headers, context=context)


def extract(carrier: Mapping[str, str] | None) -> Context:
    """The context those headers carry; an empty (new-trace) context without them."""
    return PROPAGATOR.extract(carrier or {})


def envelope_context(envelope: Envelope) -> Context:
    """The trace context a consumed record carried."""
    if not envelope.traceparent:
        return Context()
    carrier = {"traceparent": envelope.traceparent}
    state = envelope.extra_headers.get("tracestate")
    if state:
        carrier["tracestate"] = state
    return PROPAGATOR.extract(carrier)


def process_span(
    envelope: Envelope,
    consumer: str,
    *,
    topic: str,
    partition: int | None = None,
    offset: int | None = None,
) -> trace.Span:
    """A `process <topic>` span for one record, child of the record's context."""
    attributes: dict[str, str | int] = {
        **SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": consumer,
        "messaging.message.id": envelope.id,
        "cloudevents.event_type": envelope.type,
    }
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    return TRACER.start_span(
        f"process {topic}",
        context=envelope_context(envelope),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    )


def batch_span(consumer: str, envelopes: Iterable[Envelope], count: int) -> Span:
    """A `process` span for a batch, linked to (up to MAX_LINKS of) its records' contexts.

    A new trace of its own: a batch has many parents, so per the conventions
    it links to them. The links are built only when the span records, so an
    unsampled or untraced batch costs nothing per record."""
    span = TRACER.start_span(
        f"process {consumer}",
        kind=SpanKind.CONSUMER,
        context=Context(),
        attributes={
            **SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.consumer.group.name": consumer,
            "messaging.batch.message_count": count,
        },
    )
    if span.is_recording():
        links = 0
        for envelope in envelopes:
            parent = trace.get_current_span(envelope_context(envelope)).get_span_context()
            if parent.is_valid:
                span.add_link(parent, {"messaging.message.id": envelope.id})
                links += 1
                if links == MAX_LINKS:
                    break
    return span


__all__ = [
    "MAX_LINKS",
    "TRACER",
    "TRACE_HEADERS",
    "batch_span",
    "current_trace_context",
    "envelope_context",
    "extract",
    "inject",
    "process_span",
]
