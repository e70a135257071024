"""Bus fixtures: a real Tansu per test, a real database per backend, helpers to
read what actually landed on a topic."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from events.broker import (
    Bus,
    KafkaProducer,
    KafkaSettings,
    RelayProducer,
    ensure_topics,
)
from events.db import Database
from events.embedded import EmbeddedBroker

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class TestBase(DeclarativeBase):
    """Tables of the tests only: kept off `events.db.Base` so migrations never see them."""

    __test__ = False


class Tally(TestBase):
    """What a test handler wrote: how many times it ran for one name."""

    __tablename__ = "bus_test_tally"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


def bus_settings(kafka: EmbeddedBroker, **overrides: Any) -> KafkaSettings:
    """Fast group joins, and short timeouts so a dead broker fails a send quickly."""
    values: dict[str, Any] = {
        "session_timeout_ms": 1000,
        "heartbeat_interval_ms": 200,
        "request_timeout_ms": 3000,
    }
    return KafkaSettings(kafka.bootstrap_servers, **{**values, **overrides})


@pytest.fixture
async def kafka_settings(kafka: EmbeddedBroker) -> KafkaSettings:
    settings = bus_settings(kafka)
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.engine.begin() as connection:
        await connection.run_sync(TestBase.metadata.create_all)
    yield database
    await database.dispose()


@pytest.fixture
async def broker(kafka_settings: KafkaSettings) -> AsyncIterator[Bus]:
    """A connected bus (its producer); a test may add subscribers and start it."""
    broker = Bus(kafka_settings)
    await broker.connect()
    yield broker
    await broker.stop()


@pytest.fixture
def producer(broker: Bus) -> KafkaProducer:
    return KafkaProducer(broker)


@pytest.fixture
async def relay_producer(kafka_settings: KafkaSettings) -> AsyncIterator[RelayProducer]:
    """The outbox relay's own producer."""
    producer = RelayProducer(kafka_settings)
    yield producer
    await producer.stop()


MARKER = "x-test-marker"


async def read_all(kafka_settings: KafkaSettings, *topics: str) -> list[Record]:
    """Exactly the records now in `topics`, partition by partition in offset order.

    A marker record is appended to each partition and everything up to it is
    read: no waiting for a count, and no trust in end offsets (Tansu's are not
    exact after multi-record batches). Markers are left out of the result.
    """
    marker = uuid.uuid4().hex.encode()
    partitions: list[TopicPartition] = []
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        for topic in topics:
            for partition in sorted(await producer.partitions_for(topic)):
                partitions.append(TopicPartition(topic, partition))
                await producer.send_and_wait(
                    topic, b"", partition=partition, headers=[(MARKER, marker)]
                )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        enable_auto_commit=False,
        # Short fetch long-polls: Tansu finishes one before it exits at teardown.
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: dict[TopicPartition, list[Record]] = {p: [] for p in partitions}
        waiting = set(partitions)
        deadline = asyncio.get_running_loop().time() + 10
        while waiting:
            assert asyncio.get_running_loop().time() < deadline, f"markers unread: {waiting}"
            for partition, records in (await consumer.getmany(timeout_ms=100)).items():
                for record in records:
                    markers = [value for name, value in record.headers if name == MARKER]
                    if marker in markers:
                        waiting.discard(partition)
                    elif not markers and partition in waiting:
                        found[partition].append(record)
        return [record for partition in partitions for record in found[partition]]
    finally:
        await consumer.stop()


def tansu_pid(broker: EmbeddedBroker) -> int:
    """The Tansu process listening for `broker` (EmbeddedBroker keeps its process private)."""
    listener = f"tcp://{broker.host}:{broker.port}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if args[0].endswith(b"/tansu") and listener in args:
            return int(entry.name)
    raise AssertionError(f"no tansu process listens on {listener.decode()}")


def header(record: Record, name: str) -> str:
    values = [value.decode() for key, value in record.headers if key == name]
    assert len(values) == 1, f"header {name!r} appears {len(values)} times: {record.headers}"
    return values[0]


def headers(record: Record) -> dict[str, str]:
    return {key: value.decode() for key, value in record.headers}
