"""The Kafka side of the bus: the FastStream broker, publishing and topics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner
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
    # Kafka's idempotent producer (the broker drops duplicates and refuses a batch
    # out of sequence). The embedded broker does not support it; the relay keeps
    # each key's order without it (see RelayProducer).
    idempotence: bool = False
    # Dead-letter topics keep their records this long (explicit, not the broker's
    # default): long enough to notice, look and re-drive.
    dlq_retention_ms: int = 14 * 24 * 3600 * 1000


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


@dataclass(frozen=True, slots=True)
class OutgoingRecord:
    topic: str
    key: bytes
    headers: dict[str, str]
    value: bytes


class OrderedPublisher(Protocol):
    async def publish_in_order(
        self, records: Sequence[OutgoingRecord]
    ) -> list[BaseException | None]: ...


class RelayProducer:
    """The outbox relay's producer: publishes a round of records so that no record
    lands before an earlier one of its partition (hence of its key) that failed.

    A round's records are grouped by the partition their key hashes to (Kafka's
    default partitioner, as any client computes it) and packed, in order, into
    produce batches. Partitions go out concurrently; the batches of one partition
    one after another, and after a failed batch the rest of that partition's
    records are not sent at all: they come again, in order, in the next round.
    Without this, a batch that failed after its retries could be followed by a
    later one of the same partition that succeeded, and a key's newer event
    would be consumed before its older one. Returns, per record, the error that
    kept it from being acked, or None.
    """

    def __init__(self, kafka: KafkaSettings, *, max_batch_bytes: int = 1024 * 1024) -> None:
        self._kafka = kafka
        self._max_batch_bytes = max_batch_bytes
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()

    def build(self, **options: Any) -> AIOKafkaProducer:
        """The aiokafka producer (a test may hand back one that injects faults)."""
        return AIOKafkaProducer(**options)

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self.build(
                bootstrap_servers=self._kafka.bootstrap_servers,
                client_id="haunted-relay",
                acks="all",
                linger_ms=5,
                max_batch_size=self._max_batch_bytes,
                request_timeout_ms=self._kafka.request_timeout_ms,
                enable_idempotence=self._kafka.idempotence,
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def publish_in_order(
        self, records: Sequence[OutgoingRecord]
    ) -> list[BaseException | None]:
        producer = await self._started()
        partitions: dict[str, list[int]] = {}
        lanes: dict[tuple[str, int], list[int]] = {}
        for index, record in enumerate(records):
            if record.topic not in partitions:
                partitions[record.topic] = sorted(await producer.partitions_for(record.topic))
            every = partitions[record.topic]
            partition = self._partitioner(record.key, every, every)
            lanes.setdefault((record.topic, partition), []).append(index)
        results: list[BaseException | None] = [None] * len(records)

        async def lane(topic: str, partition: int, indexes: list[int]) -> None:
            sent = 0
            while sent < len(indexes):
                batch = producer.create_batch()
                packed = 0
                for index in indexes[sent:]:
                    record = records[index]
                    headers = [(name, value.encode()) for name, value in record.headers.items()]
                    if (
                        batch.append(
                            key=record.key, value=record.value, timestamp=None, headers=headers
                        )
                        is None
                    ):
                        break  # full: the rest go in the next batch, after this one's ack
                    packed += 1
                if packed == 0:
                    error: BaseException = ValueError("record larger than a produce batch")
                    _fail(results, indexes[sent:], error)
                    return
                try:
                    future: Any = await producer.send_batch(batch, topic, partition=partition)
                    await future
                except Exception as failure:
                    _fail(results, indexes[sent:], failure)  # this batch and all after it
                    return
                sent += packed

        await asyncio.gather(*(lane(t, p, i) for (t, p), i in lanes.items()))
        return results


def _fail(
    results: list[BaseException | None], indexes: Iterable[int], error: BaseException
) -> None:
    for index in indexes:
        results[index] = error


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
                    [
                        NewTopic(
                            t,
                            kafka.partitions,
                            kafka.replication_factor,
                            topic_configs=(
                                {"retention.ms": str(kafka.dlq_retention_ms)}
                                if t.endswith(DLQ_SUFFIX)
                                else {}
                            ),
                        )
                        for t in missing
                    ]
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


@asynccontextmanager
async def partition_reader(kafka: KafkaSettings, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer with no group: the caller assigns partitions, nothing is
    committed. Stopped on leaving, and when its start fails (no client left unclosed
    when the broker does not answer)."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        request_timeout_ms=kafka.request_timeout_ms,
        **options,
    )
    try:
        await reader.start()
        yield reader
    finally:
        await reader.stop()


def partitions_of(reader: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of `topics` the reader's metadata knows, in order."""
    return [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(reader.partitions_for_topic(topic) or ())
    ]
