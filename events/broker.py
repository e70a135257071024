"""The Kafka side of the bus: the FastStream broker, publishing and topics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity

from events.envelope import Envelope
from schemas import CATALOG

log = structlog.get_logger(__name__)

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """What the bus needs to know about the cluster (built from the one Settings object)."""

    bootstrap_servers: str
    partitions: int = 3
    replication_factor: int = 1
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 500
    # How long a fetch may wait for data. Kafka answers as soon as a record
    # arrives; the embedded broker often waits the full time, so keep it short.
    fetch_max_wait_ms: int = 100
    request_timeout_ms: int = 15000


def build_broker(kafka: KafkaSettings, *, security: BaseSecurity | None = None) -> KafkaBroker:
    return KafkaBroker(
        kafka.bootstrap_servers,
        request_timeout_ms=kafka.request_timeout_ms,
        # Batches fill for a moment instead of one request per record.
        linger_ms=5,
        acks="all",
        security=security,
        logger=None,
        client_id="haunted",
        description="Haunted domain events (CloudEvents 1.0, Kafka binary mode)",
    )


class EventProducer(Protocol):
    async def send(
        self, topic: str, key: bytes, headers: dict[str, str], value: bytes
    ) -> asyncio.Future[object]: ...


class KafkaProducer:
    """Sends records without awaiting their acks; the caller gathers the futures."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def send(
        self, topic: str, key: bytes, headers: dict[str, str], value: bytes
    ) -> asyncio.Future[object]:
        future = await self._broker.publish(value, topic, key=key, headers=headers, no_confirm=True)
        return future

    async def publish(self, envelope: Envelope) -> None:
        """Publishes one envelope and waits for its ack (not for hot paths)."""
        await self._broker.publish(
            envelope.value(), envelope.type, key=envelope.key, headers=envelope.headers()
        )


def catalog_topics(*, with_dlq: bool = True) -> list[str]:
    topics = list(CATALOG)
    if with_dlq:
        topics += [topic + DLQ_SUFFIX for topic in CATALOG]
    return topics


async def ensure_topics(kafka: KafkaSettings, topics: Iterable[str] | None = None) -> list[str]:
    """Creates missing topics (by default the catalog and its dead letters); returns the new."""
    wanted = list(topics) if topics is not None else catalog_topics()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap_servers, request_timeout_ms=kafka.request_timeout_ms
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(t, kafka.partitions, kafka.replication_factor) for t in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another process created them first
        return missing
    finally:
        await admin.close()


def declare_catalog(broker: KafkaBroker) -> None:
    """Declares one publisher per catalog topic, so the AsyncAPI document names them all."""
    for topic, model in CATALOG.items():
        broker.publisher(
            topic,
            title=topic,
            description=(model.__doc__ or topic).strip()
            + f" Key: {model.key_field}. Audience: {model.audience}. Schema: {model.dataschema()}.",
            schema=model,
        )
