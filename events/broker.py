"""The Kafka side of the bus: aiokafka clients, publishing, subscribing and topics.

The bus talks to Kafka through aiokafka's public API only: a `Bus` holds the
process's producer (dead letters, `KafkaProducer.publish`) and its
`Subscriber`s, each one `AIOKafkaConsumer` and the loop that hands every fetch
to its handler. FastStream did this before; docs/architecture.md ("Kafka
clients") has the measurements behind the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ConsumerStoppedError, KafkaError, TopicAlreadyExistsError
from aiokafka.partitioner import DefaultPartitioner

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


Record: TypeAlias = ConsumerRecord[bytes, bytes]
# What a subscriber does with one fetch: its records, partition by partition in
# offset order, and the consumer they came from (to commit, seek, pause).
OnRecords = Callable[[Sequence[Record], AIOKafkaConsumer], Awaitable[None]]

_POLL_MS = 500  # the longest a fetch loop waits for records before it polls again
_STOP_GRACE_S = 5.0  # how long a stopping subscriber lets its handler finish


class Subscriber:
    """One consumer and its fetch loop: a member of the group `group_id`, or,
    with no group, a reader of every partition of `topics` (the fan-out).

    Each fetch (up to `max_records`) goes to `on_records` in one call, and the
    next fetch waits for it: the handler decides what is committed (auto commit
    is off) and may seek or pause partitions. A handler that raises anyway (a
    bug: the bus's handlers catch what they expect) leaves nothing skipped: the
    partitions go back to the fetch's first records and are read again after a
    second.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: Iterable[str],
        on_records: OnRecords,
        *,
        group_id: str | None,
        name: str,
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        max_records: int = 500,
        fetch_max_wait_ms: int | None = None,
    ) -> None:
        self.topics = list(topics)
        self.group_id = group_id
        self.name = name
        self.max_records = max_records
        self._kafka = kafka
        self._on_records = on_records
        self._auto_offset_reset = auto_offset_reset
        self._fetch_max_wait_ms = (
            kafka.fetch_max_wait_ms if fetch_max_wait_ms is None else fetch_max_wait_ms
        )
        self._running = False
        self._task: asyncio.Task[None] | None = None
        # The started consumer (None before start and after stop): lag sampling reads it.
        self.consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        if self.consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            client_id="haunted",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
            session_timeout_ms=self._kafka.session_timeout_ms,
            heartbeat_interval_ms=self._kafka.heartbeat_interval_ms,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            request_timeout_ms=self._kafka.request_timeout_ms,
        )
        consumer.subscribe(self.topics)
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()  # no client left unclosed when the broker does not answer
            raise
        self.consumer = consumer
        self._running = True
        self._task = asyncio.create_task(self._consume(consumer), name=f"consume {self.name}")

    async def stop(self) -> None:
        """No new fetch; the handler running now may finish (bounded), then the
        consumer leaves its group."""
        self._running = False
        task, self._task = self._task, None
        consumer, self.consumer = self.consumer, None
        if task is not None:
            _, late = await asyncio.wait([task], timeout=_STOP_GRACE_S)
            if late:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
        if consumer is not None:
            await consumer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        failures = 0
        while self._running:
            try:
                fetched = await consumer.getmany(timeout_ms=_POLL_MS, max_records=self.max_records)
            except ConsumerStoppedError:
                return
            except KafkaError as error:  # the client reconnects by itself: poll again
                failures += 1
                log.warning("fetch failed", subscriber=self.name, error=repr(error))
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            records = [record for batch in fetched.values() for record in batch]
            if not records or not self._running:
                if records:  # stopping: not handed over, so not committed; read again later
                    rewind(consumer, records)
                continue
            try:
                await self._on_records(records, consumer)
            except Exception:
                log.exception("subscriber handler failed; its records are read again")
                rewind(consumer, records)
                await asyncio.sleep(1.0)


def rewind(consumer: AIOKafkaConsumer, records: Sequence[Record]) -> None:
    """Moves each partition back to the first of `records`, to fetch them again."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        first[partition] = min(record.offset, first.get(partition, record.offset))
    for partition, offset in first.items():
        try:
            consumer.seek(partition, offset)
        except (KafkaError, AssertionError) as error:  # not assigned here any more, or stopped
            log.info(
                "not rewound: partition not assigned", partition=str(partition), error=repr(error)
            )


class Bus:
    """A process's Kafka clients: one producer, and the subscribers added to it.

    Building connects to nothing. `connect()` starts the producer alone (a
    process that only publishes or dead-letters); `start()` also starts every
    subscriber, all at once (each fetches its topics' metadata: started one
    after another, the catalog's groups took about a second).
    """

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.subscribers: list[Subscriber] = []
        self.started = False
        self._producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    def add(self, subscriber: Subscriber) -> Subscriber:
        self.subscribers.append(subscriber)
        return subscriber

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise ConnectionError("the bus is not connected to the broker")
        return self._producer

    async def connect(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            bootstrap_servers=self.kafka.bootstrap_servers,
            client_id="haunted",
            request_timeout_ms=self.kafka.request_timeout_ms,
            # Batches fill for a moment instead of one request per record.
            linger_ms=5,
            acks="all",
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def start(self) -> None:
        await self.connect()
        await asyncio.gather(*(subscriber.start() for subscriber in self.subscribers))
        self.started = True

    async def stop(self) -> None:
        """Stops the subscribers, then the producer (its pending sends flushed). Safe
        to call twice, and after a start that failed half way."""
        self.started = False
        await asyncio.gather(
            *(subscriber.stop() for subscriber in self.subscribers), return_exceptions=True
        )
        producer, self._producer = self._producer, None
        admin, self._admin = self._admin, None
        if producer is not None:
            await producer.stop()
        if admin is not None:
            await admin.close()

    async def ping(self, within_s: float = 1.0) -> bool:
        """Whether the cluster answers a metadata request within `within_s` seconds."""
        try:
            async with asyncio.timeout(within_s):
                if self._admin is None:
                    admin = AIOKafkaAdminClient(
                        bootstrap_servers=self.kafka.bootstrap_servers,
                        request_timeout_ms=self.kafka.request_timeout_ms,
                    )
                    try:
                        await admin.start()
                    except BaseException:
                        await admin.close()
                        raise
                    self._admin = admin
                await self._admin.describe_cluster()
        except Exception:  # refused, timed out, closed meanwhile: it does not answer
            return False
        return True


class EventProducer(Protocol):
    async def send(
        self, topic: str, key: bytes, headers: dict[str, str], value: bytes
    ) -> asyncio.Future[object]: ...


class KafkaProducer:
    """Sends records without awaiting their acks; the caller gathers the futures."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def send(
        self, topic: str, key: bytes, headers: dict[str, str], value: bytes
    ) -> asyncio.Future[object]:
        future: asyncio.Future[object] = await self._bus.producer.send(
            topic,
            value,
            key=key,
            headers=[(name, text.encode()) for name, text in headers.items()],
        )
        return future

    async def publish(self, envelope: Envelope) -> None:
        """Publishes one envelope and waits for its ack (not for hot paths)."""
        sent = await self.send(envelope.type, envelope.key, envelope.headers(), envelope.value())
        await sent


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
                # The relay hands over whole batches (send_batch) and then awaits their
                # acks: nothing more joins a batch once handed over, so lingering
                # only delayed every round, by 5 ms, for nothing.
                linger_ms=0,
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
