"""The fan-out consumer: every event, to every gateway process.

Each gateway process reads the pushable topics with no consumer group (no
join, no shared offsets) from the latest offset, and hands each event to its
own connections. N gateways each see every event: no extra pub/sub layer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence

import structlog
from aiokafka import AIOKafkaConsumer
from opentelemetry import trace

from events.broker import Bus, Record, Subscriber
from events.consumer import RetryPolicy, is_infrastructure
from events.envelope import Envelope, MalformedEvent
from events.tracing import process_span
from schemas import CATALOG, Audience

log = structlog.get_logger(__name__)

Deliver = Callable[[Envelope], Awaitable[None]]


_RETRY = RetryPolicy(backoff_s=0.1, max_backoff_s=5.0)


def pushable_topics() -> list[str]:
    return [topic for topic, model in CATALOG.items() if model.audience is not Audience.INTERNAL]


def subscribe_fanout(
    bus: Bus,
    deliver: Deliver,
    topics: Iterable[str] | None = None,
    *,
    fetch_max_wait_ms: int = 100,
) -> Subscriber:
    """Adds the fan-out subscriber to `bus`: each record, in order, to `deliver`."""

    async def on_records(records: Sequence[Record], _: AIOKafkaConsumer) -> None:
        for record in records:
            await on_event(record)

    async def on_event(record: Record) -> None:
        try:
            envelope = Envelope.from_record(record.headers, record.value)
            envelope.decode()
        except MalformedEvent as error:
            log.warning("fan-out skipped a malformed record", error=str(error))
            return
        span = process_span(
            envelope,
            "gateway.fanout",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        with trace.use_span(span, end_on_exit=True):
            failures = 0
            while True:
                try:
                    await deliver(envelope)
                    return
                except Exception as error:
                    if not is_infrastructure(error):  # one bad push must not stop the stream
                        log.exception("fan-out delivery failed", event_id=envelope.id)
                        return
                    # Redis (or the database) away: skipping would lose this push for
                    # clients that stay connected (no `since` recovery for them), so wait
                    # it out. This subscriber holds no group: waiting costs no rebalance.
                    failures += 1
                    delay = _RETRY.delay(failures)
                    log.warning("fan-out waiting for a dependency", error=repr(error), wait_s=delay)
                    await asyncio.sleep(delay)

    return bus.add(
        Subscriber(
            bus.kafka,
            topics if topics is not None else pushable_topics(),
            on_records,
            # No group: every gateway process reads every partition, from now on.
            group_id=None,
            name="gateway.fanout",
            auto_offset_reset="latest",
            # Push latency: a fetch that waits for more data delays every event.
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
    )


async def pin_start_offsets(subscriber: Subscriber, timeout_s: float = 10.0) -> None:
    """Resolves "latest" to concrete offsets now, so every event published after
    this returns is pushed (aiokafka otherwise resolves it at the first fetch)."""
    consumer = subscriber.consumer
    if consumer is None:
        raise RuntimeError("the fan-out subscriber has not started")
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not consumer.assignment():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the fan-out consumer got no partitions")
        await asyncio.sleep(0.02)
    for partition in consumer.assignment():
        await consumer.position(partition)
