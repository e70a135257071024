"""Batch consumers (events/consumer.py `subscribe_batch`): a batch written while
the next is fetched, offsets committed only for what is stored."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker, KafkaRouter
from sqlalchemy.ext.asyncio import AsyncSession

from events.broker import KafkaProducer, KafkaSettings
from events.consumer import EventConsumers
from events.db import Database
from events.envelope import Envelope
from schemas import Event, UserLoggedIn
from tests.conftest import eventually
from tests.events.conftest import Tally, headers, read_all
from tests.events.test_consumer import CONSUMER, DLQ, FAST_RETRY, TOPIC, login, publish, tally

GROUP = f"haunted.{CONSUMER}"


async def remember_sessions(session: AsyncSession, items: Sequence[tuple[Envelope, Event]]) -> None:
    """Idempotent by itself, as batch handlers must be: one row per session id."""
    for _, event in items:
        assert isinstance(event, UserLoggedIn)
        await session.merge(Tally(name=event.session_id, count=1))


async def committed(kafka_settings: KafkaSettings) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:
        # Named partitions: Tansu's answer for "all of the group's" does not decode.
        offsets = await admin.list_consumer_group_offsets(
            GROUP, partitions=[TopicPartition(TOPIC, p) for p in range(kafka_settings.partitions)]
        )
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


class FailingOnce:
    """The dead-letter producer failing its first send, as a broker outage would."""

    def __init__(self, producer: KafkaProducer) -> None:
        self._producer = producer
        self.failed = False

    async def send(
        self, topic: str, key: bytes, headers: dict[str, str], value: bytes
    ) -> asyncio.Future[object]:
        if not self.failed:
            self.failed = True
            raise ConnectionError("the broker is away")
        return await self._producer.send(topic, key, headers, value)


async def start_batch_consumer(
    broker: KafkaBroker, consumers: EventConsumers, handler: object = remember_sessions
) -> None:
    router = KafkaRouter()
    consumers.subscribe_batch(router, CONSUMER, [TOPIC], handler)  # type: ignore[arg-type]
    broker.include_router(router)
    await broker.start()


async def test_every_batch_is_stored_and_its_offsets_committed(
    db: Database, broker: KafkaBroker, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    envelopes = [login(f"s{n}") for n in range(40)]
    await publish(producer, *envelopes[:20])
    consumers = EventConsumers(db, producer, kafka_settings, FAST_RETRY)
    await start_batch_consumer(broker, consumers)
    await publish(producer, *envelopes[20:])  # a second batch, or more, while running

    async def all_stored() -> bool:
        return len(await tally(db)) == len(envelopes)

    await eventually(all_stored)
    # One user, one partition: its committed offset is just past the last record.
    (last,) = [
        r for r in await read_all(kafka_settings, TOPIC) if headers(r)["ce_id"] == envelopes[-1].id
    ]

    async def all_committed() -> bool:
        return (await committed(kafka_settings)).get(last.partition) == last.offset + 1

    await eventually(all_committed)
    await broker.stop()
    await consumers.drain()
    assert await tally(db) == {f"s{n}": 1 for n in range(40)}


async def test_a_batch_that_cannot_be_stored_is_fetched_again_and_nothing_is_skipped(
    db: Database, broker: KafkaBroker, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    async def s3_is_poison(session: AsyncSession, items: Sequence[tuple[Envelope, Event]]) -> None:
        for _, event in items:
            assert isinstance(event, UserLoggedIn)
            if event.session_id == "s3":
                raise ValueError("s3 cannot be stored")
        await remember_sessions(session, items)

    envelopes = [login(f"s{n}") for n in range(1, 7)]
    await publish(producer, *envelopes)
    # The batch fails, its records one by one, and s3's dead letter cannot be sent:
    # the batch is not stored as a whole, so nothing of it may be committed.
    dead_letters = FailingOnce(producer)
    consumers = EventConsumers(db, dead_letters, kafka_settings, FAST_RETRY)
    await start_batch_consumer(broker, consumers, s3_is_poison)

    async def settled() -> bool:
        stored = await tally(db)
        return dead_letters.failed and len(stored) == 5 and len(await committed(kafka_settings)) > 0

    await eventually(settled, timeout_s=20)
    assert await tally(db) == {f"s{n}": 1 for n in (1, 2, 4, 5, 6)}
    (dead,) = await read_all(kafka_settings, DLQ)
    assert headers(dead)["ce_id"] == envelopes[2].id
    assert headers(dead)["dlq_error"] == "ValueError: s3 cannot be stored"
    records = await read_all(kafka_settings, TOPIC)
    assert (await committed(kafka_settings))[records[-1].partition] == records[-1].offset + 1
