"""W3C trace context across Kafka (events/tracing.py, the outbox relay, the consumers)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession

from events.broker import Bus, KafkaProducer, KafkaSettings, RelayProducer
from events.db import Database
from events.envelope import Envelope
from events.outbox import OutboxRecord, OutboxRelay, add_event
from events.tracing import TRACER
from schemas import Event, UserLoggedIn
from tests.conftest import SpanCollector, eventually
from tests.events.conftest import header, read_all
from tests.events.test_consumer import CONSUMER, TOPIC, publish, start_consumer


async def test_the_relay_sends_traceparent_that_a_plain_kafka_client_reads(
    spans: SpanCollector, db: Database, relay_producer: RelayProducer, kafka_settings: KafkaSettings
) -> None:
    with TRACER.start_as_current_span("request") as request:
        async with db.transaction() as session:
            add_event(session, UserLoggedIn(user_id="u1", session_id="s1"))
    async with db.read() as session:
        (row,) = (await session.execute(OutboxRecord.__table__.select())).all()
    assert row.trace_context["traceparent"].split("-")[1] == format(
        request.get_span_context().trace_id, "032x"
    )

    assert await OutboxRelay(db, relay_producer).publish_pending() == 1

    (record,) = await read_all(kafka_settings, "user.logged_in")  # aiokafka, nothing else
    version, trace_id, parent_id, flags = header(record, "traceparent").split("-")
    (publish_span,) = spans.named("publish user.logged_in")
    assert publish_span.kind is SpanKind.PRODUCER
    assert publish_span.parent is not None
    assert publish_span.parent.span_id == request.get_span_context().span_id
    assert version == "00" and int(flags, 16) & 1  # sampled
    assert trace_id == format(request.get_span_context().trace_id, "032x")
    assert parent_id == format(publish_span.context.span_id, "016x")
    assert header(record, "ce_type") == "user.logged_in"  # next to the CloudEvent headers


async def test_an_event_added_outside_any_trace_carries_no_traceparent(
    spans: SpanCollector, db: Database, relay_producer: RelayProducer, kafka_settings: KafkaSettings
) -> None:
    async with db.transaction() as session:
        add_event(session, UserLoggedIn(user_id="u1", session_id="s1"))
    assert await OutboxRelay(db, relay_producer).publish_pending() == 1
    (record,) = await read_all(kafka_settings, "user.logged_in")
    assert "traceparent" not in dict(record.headers)
    assert spans.named("publish") == []


async def test_a_record_without_traceparent_starts_a_new_trace_and_one_with_it_continues(
    spans: SpanCollector, broker: Bus, db: Database, kafka_settings: KafkaSettings
) -> None:
    seen: list[trace.SpanContext] = []

    async def remember(_session: AsyncSession, _event: Event, _envelope: Envelope) -> None:
        seen.append(trace.get_current_span().get_span_context())

    await start_consumer(broker, db, kafka_settings, remember)
    untraced = Envelope.wrap(UserLoggedIn(user_id="u1", session_id="s1"))
    with TRACER.start_as_current_span("caller") as caller:
        carrier = caller.get_span_context()
        traced = Envelope.wrap(
            UserLoggedIn(user_id="u1", session_id="s2"),
            traceparent=f"00-{carrier.trace_id:032x}-{carrier.span_id:016x}-01",
        )
    await publish(KafkaProducer(broker), untraced, traced)

    async def both() -> list[object]:
        return [
            s
            for s in spans.named(f"process {TOPIC}")
            if s.attributes
            and s.attributes.get("messaging.consumer.group.name") == f"haunted.{CONSUMER}"
        ]

    first, second = sorted(
        await eventually(lambda: _at_least(both, 2)),
        key=lambda s: s.attributes["messaging.message.id"] == traced.id,  # type: ignore[index]
    )
    assert first.parent is None  # a root: a new trace
    assert first.context.trace_id != carrier.trace_id
    assert first.kind is SpanKind.CONSUMER
    assert second.parent is not None and second.parent.span_id == carrier.span_id
    assert second.context.trace_id == carrier.trace_id
    # The handler ran inside the process span (its writes and its events join the trace).
    assert {c.span_id for c in seen} == {first.context.span_id, second.context.span_id}


async def _at_least(check: object, count: int) -> list[object] | None:
    found = await check()  # type: ignore[operator]
    return found if len(found) >= count else None
