"""The fan-out consumer: every event, to every gateway process.

Each gateway process reads the pushable topics with no consumer group (no
join, no shared offsets) from the latest offset, and hands each event to its
own connections. N gateways each see every event: no extra pub/sub layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaMessage, KafkaRouter

from events.envelope import Envelope, MalformedEvent
from schemas import CATALOG, Audience

log = structlog.get_logger(__name__)

Deliver = Callable[[Envelope], Awaitable[None]]


def pushable_topics() -> list[str]:
    return [topic for topic, model in CATALOG.items() if model.audience is not Audience.INTERNAL]


def subscribe_fanout(router: KafkaRouter, deliver: Deliver, topics: Iterable[str] | None = None) -> None:
    async def on_event(message: KafkaMessage) -> None:
        record = message.raw_message
        try:
            envelope = Envelope.from_record(record.headers, record.value)  # type: ignore[union-attr]
            envelope.decode()
        except MalformedEvent as error:
            log.warning("fan-out skipped a malformed record", error=str(error))
            return
        try:
            await deliver(envelope)
        except Exception:  # one bad push must not stop the stream
            log.exception("fan-out delivery failed", event_id=envelope.id)

    router.subscriber(
        *(topics if topics is not None else pushable_topics()),
        group_id=None,
        auto_offset_reset="latest",
        ack_policy=AckPolicy.ACK_FIRST,
        title="gateway.fanout",
        description="Each gateway process: every pushable event to its own connections",
    )(on_event)
