"""Idempotent consumers with retries and dead letters (events/consumer.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import RecordMetadata
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession

from events.broker import Bus, KafkaProducer, KafkaSettings
from events.consumer import (
    EventConsumers,
    Outcome,
    ProcessedEvent,
    RetryPolicy,
    Stalled,
    is_infrastructure,
    purge_processed,
)
from events.db import Database
from events.envelope import Envelope, MalformedEvent
from schemas import Event, UserLoggedIn
from tests.conftest import eventually
from tests.events.conftest import Tally, headers, read_all

CONSUMER = "bus-test"
TOPIC = "user.logged_in"
DLQ = "user.logged_in.dlq"
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_s=0.01, max_backoff_s=0.2)

Handler = Callable[[AsyncSession, Event, Envelope], Awaitable[None]]


def login(session_id: str) -> Envelope:
    # One user: one key, one partition, so records arrive in publish order.
    return Envelope.wrap(UserLoggedIn(user_id="u1", session_id=session_id))


async def bump(session: AsyncSession, name: str) -> None:
    row = await session.get(Tally, name)
    if row is None:
        session.add(Tally(name=name, count=1))
    else:
        row.count += 1


async def count_sessions(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    assert isinstance(event, UserLoggedIn)
    await bump(session, event.session_id)


async def tally(db: Database) -> dict[str, int]:
    async with db.read() as session:
        return {row.name: row.count for row in await session.scalars(select(Tally))}


async def processed(db: Database) -> set[str]:
    async with db.read() as session:
        rows = await session.scalars(
            select(ProcessedEvent.event_id).where(ProcessedEvent.consumer == CONSUMER)
        )
        return set(rows)


def offline_consumers(db: Database) -> EventConsumers:
    """For `apply`, which never touches the broker."""
    settings = KafkaSettings("127.0.0.1:9")
    return EventConsumers(db, KafkaProducer(Bus(settings)), settings, FAST_RETRY)


async def start_consumer(
    broker: Bus, db: Database, kafka_settings: KafkaSettings, handler: Handler
) -> None:
    consumers = EventConsumers(db, KafkaProducer(broker), kafka_settings, FAST_RETRY)
    consumers.subscribe(broker, CONSUMER, [TOPIC], handler)
    await broker.start()


async def publish(producer: KafkaProducer, *envelopes: Envelope) -> None:
    for envelope in envelopes:
        await producer.publish(envelope)


async def test_apply_commits_the_writes_with_the_processed_record_once(db: Database) -> None:
    consumers = offline_consumers(db)
    envelope = login("s1")
    event = envelope.decode()

    assert await consumers.apply(CONSUMER, envelope, event, count_sessions) is Outcome.HANDLED
    assert await tally(db) == {"s1": 1}
    assert await processed(db) == {envelope.id}

    assert await consumers.apply(CONSUMER, envelope, event, count_sessions) is Outcome.DUPLICATE
    assert await tally(db) == {"s1": 1}
    # Another consumer is another service: it handles the same event for itself.
    assert await consumers.apply("other", envelope, event, count_sessions) is Outcome.HANDLED
    assert await tally(db) == {"s1": 2}


async def test_two_concurrent_deliveries_apply_once(db: Database) -> None:
    # Two consumers of one group briefly both holding a record after a rebalance.
    consumers = offline_consumers(db)
    envelope = login("s1")
    outcomes = await asyncio.gather(
        consumers.apply(CONSUMER, envelope, envelope.decode(), count_sessions),
        consumers.apply(CONSUMER, envelope, envelope.decode(), count_sessions),
    )
    assert sorted(outcomes) == [Outcome.DUPLICATE, Outcome.HANDLED]
    assert await tally(db) == {"s1": 1}
    assert await processed(db) == {envelope.id}


async def test_a_failing_handler_leaves_nothing_half_written(db: Database) -> None:
    consumers = offline_consumers(db)
    envelope = login("s1")

    async def write_then_fail(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        await count_sessions(session, event, envelope)
        await session.flush()  # the write reached the database inside the transaction
        raise RuntimeError("handler broke after writing")

    with pytest.raises(RuntimeError, match="after writing"):
        await consumers.apply(CONSUMER, envelope, envelope.decode(), write_then_fail)
    assert await tally(db) == {}
    assert await processed(db) == set()
    # Not marked processed, so a later delivery still gets handled.
    assert await consumers.apply(CONSUMER, envelope, envelope.decode(), count_sessions) is (
        Outcome.HANDLED
    )
    assert await tally(db) == {"s1": 1}


async def test_a_duplicate_delivery_is_handled_once(
    db: Database, broker: Bus, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    first, second = login("s1"), login("s2")
    await publish(producer, first, first, second)  # the same ce_id delivered twice
    await start_consumer(broker, db, kafka_settings, count_sessions)

    await eventually(lambda: _has(db, "s2"))
    assert await tally(db) == {"s1": 1, "s2": 1}
    assert await processed(db) == {first.id, second.id}
    assert await read_all(kafka_settings, DLQ) == []


async def test_an_outage_is_waited_out_past_max_attempts_and_never_dead_letters(
    db: Database, broker: Bus, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    # Three times as many failures as a poison record gets attempts: an outage is
    # not the record's fault, however long it lasts.
    outage = FAST_RETRY.max_attempts * 3
    attempts: list[str] = []

    async def flaky(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, UserLoggedIn)
        attempts.append(event.session_id)
        await count_sessions(session, event, envelope)
        if event.session_id == "s1" and attempts.count("s1") <= outage:
            raise ConnectionRefusedError("the database is away")

    first, second = login("s1"), login("s2")
    await publish(producer, first, second)
    await start_consumer(broker, db, kafka_settings, flaky)

    await eventually(lambda: _has(db, "s2"), timeout_s=30)
    # In order: s2 (same key) waited for s1 rather than overtaking it.
    assert attempts == ["s1"] * (outage + 1) + ["s2"]
    assert await tally(db) == {"s1": 1, "s2": 1}  # the failed attempts' writes rolled back
    assert await processed(db) == {first.id, second.id}
    assert await read_all(kafka_settings, DLQ) == []


async def test_a_handler_past_its_time_limit_is_an_outage_not_a_poison_record(
    db: Database, broker: Bus, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    calls: list[str] = []
    stuck = asyncio.Event()

    async def hangs_at_first(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, UserLoggedIn)
        calls.append(event.session_id)
        if len(calls) <= FAST_RETRY.max_attempts + 1:
            await stuck.wait()  # a lock or a remote call that never answers
        await count_sessions(session, event, envelope)

    envelope = login("s1")
    await publish(producer, envelope)
    consumers = EventConsumers(
        db, KafkaProducer(broker), kafka_settings, replace(FAST_RETRY, handler_timeout_s=0.1)
    )
    consumers.subscribe(broker, CONSUMER, [TOPIC], hangs_at_first)
    await broker.start()

    await eventually(lambda: _has(db, "s1"), timeout_s=30)
    assert len(calls) == FAST_RETRY.max_attempts + 2
    assert await read_all(kafka_settings, DLQ) == []


def test_errors_are_told_apart_by_kind() -> None:
    class SerializationFailure(Exception):
        sqlstate = "40001"  # what asyncpg's errors carry

    class UniqueViolation(Exception):
        sqlstate = "23505"

    def wrapped(cause: Exception) -> DBAPIError:
        try:
            raise DBAPIError("UPDATE ...", {}, cause) from cause
        except DBAPIError as error:
            return error

    outages = [
        ConnectionResetError(),
        TimeoutError(),
        OperationalError("SELECT 1", {}, Exception("database is locked")),
        PoolTimeoutError("QueuePool limit of size 10 overflow 10 reached"),
        RedisConnectionError("Connection refused"),
        KafkaConnectionError(),
        wrapped(SerializationFailure()),
        Stalled(ConnectionRefusedError()),
    ]
    for error in outages:
        assert is_infrastructure(error), error
    for error in (
        ValueError("amount must be positive"),
        MalformedEvent("not JSON"),
        wrapped(UniqueViolation()),
        KeyError("plan"),
    ):
        assert not is_infrastructure(error), error


def test_outage_waits_grow_capped_with_jitter() -> None:
    policy = RetryPolicy(backoff_s=0.1, max_backoff_s=2.0)
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (6, 2.0), (50, 2.0)):
        waits = {policy.delay(attempt) for _ in range(20)}
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits), (attempt, waits)
        assert len(waits) > 1  # jittered: a fleet does not retry in step


async def test_a_handler_that_always_fails_dead_letters_and_the_consumer_goes_on(
    db: Database, broker: Bus, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    calls: list[str] = []

    async def fails_on_s1(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, UserLoggedIn)
        calls.append(event.session_id)
        await count_sessions(session, event, envelope)
        if event.session_id == "s1":
            raise ValueError("s1 cannot be handled")

    counted_before = dead_letters_counted(TOPIC)
    poison, after = login("s1"), login("s2")
    sent = await producer.send(TOPIC, poison.key, poison.headers(), poison.value())
    original = cast(RecordMetadata, await sent)
    await publish(producer, after)
    await start_consumer(broker, db, kafka_settings, fails_on_s1)

    await eventually(lambda: _has(db, "s2"))
    assert calls == ["s1"] * FAST_RETRY.max_attempts + ["s2"]
    assert await tally(db) == {"s2": 1}
    assert await processed(db) == {after.id}
    assert dead_letters_counted(TOPIC) == counted_before + 1

    (dead,) = await read_all(kafka_settings, DLQ)
    dead_headers = headers(dead)
    assert dead_headers["dlq_error"] == "ValueError: s1 cannot be handled"
    assert dead_headers["dlq_consumer"] == CONSUMER
    assert dead_headers["dlq_topic"] == TOPIC
    assert dead_headers["dlq_partition"] == str(original.partition)
    assert dead_headers["dlq_offset"] == str(original.offset)
    assert dead_headers["dlq_attempts"] == str(FAST_RETRY.max_attempts)
    for name, value in poison.headers().items():
        assert dead_headers[name] == value
    assert dead.key == poison.key
    assert dead.value == poison.value()


async def test_malformed_records_go_straight_to_the_dlq_and_the_consumer_goes_on(
    db: Database, broker: Bus, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    calls: list[str] = []

    async def recording(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        calls.append(envelope.id)
        await count_sessions(session, event, envelope)

    def raw(envelope: Envelope) -> list[tuple[str, bytes | None]]:
        return [(name, value.encode()) for name, value in envelope.headers().items()]

    without_id = [(n, v) for n, v in raw(login("s2")) if n != "ce_id"]
    # As other Kafka clients may write them: header values are bytes, or null.
    malformed: list[tuple[list[tuple[str, bytes | None]], bytes, str]] = [
        (raw(login("s1")), b"{not json", "not JSON"),
        (without_id, login("s2").value(), "missing headers: ce_id"),
        (
            [*raw(login("s3")), ("ce_type", b"user.teleported")],
            login("s3").value(),
            "unknown event type",
        ),
        (raw(login("s4")), b'{"user_id":"u1"}', "does not match user.logged_in"),
        ([*raw(login("s5")), ("x-trace", b"\xff\xfe")], login("s5").value(), "UTF-8"),
        (
            [(n, None if n == "ce_specversion" else v) for n, v in raw(login("s6"))],
            login("s6").value(),
            "ce_specversion",
        ),
    ]
    client = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await client.start()
    try:
        for record_headers, value, _ in malformed:
            # A repeated name: the last one wins, as in Envelope.from_record.
            await client.send_and_wait(TOPIC, value, key=b"u1", headers=record_headers)
    finally:
        await client.stop()
    good = login("s9")
    await publish(producer, good)
    await start_consumer(broker, db, kafka_settings, recording)

    await eventually(lambda: _has(db, "s9"))
    assert calls == [good.id]  # the handler never saw a malformed record
    dead = await read_all(kafka_settings, DLQ)
    assert len(dead) == len(malformed)
    for record, (_, value, reason) in zip(dead, malformed, strict=True):
        dlq = {name: v.decode(errors="replace") for name, v in record.headers if v is not None}
        assert reason in dlq["dlq_error"], dlq["dlq_error"]
        assert dlq["dlq_attempts"] == "0"
        assert dlq["dlq_consumer"] == CONSUMER
        assert dlq["dlq_topic"] == TOPIC
        assert record.value == value


def dead_letters_counted(topic: str, consumer: str = CONSUMER) -> float | None:
    return REGISTRY.get_sample_value(
        "haunted_dead_letters_total", {"consumer": consumer, "topic": topic}
    )


async def test_the_dead_letter_count_exists_at_zero_from_the_start(
    db: Database, broker: Bus, kafka_settings: KafkaSettings
) -> None:
    # A fresh topic of this consumer: its series must be there before any dead
    # letter, or an alert on its increase could never fire on the first one.
    consumers = EventConsumers(db, KafkaProducer(broker), kafka_settings, FAST_RETRY)
    consumer = f"fresh-{uuid.uuid4().hex[:8]}"  # metrics are process-wide
    assert dead_letters_counted(TOPIC, consumer) is None
    consumers.subscribe(broker, consumer, [TOPIC], count_sessions)
    assert dead_letters_counted(TOPIC, consumer) == 0


async def _has(db: Database, name: str) -> bool:
    return name in await tally(db)


async def test_purge_forgets_only_events_older_than_the_window(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        for index in range(25):
            age = timedelta(days=20 if index % 2 else 1)
            session.add(
                ProcessedEvent(consumer=CONSUMER, event_id=f"e{index}", processed_at=now - age)
            )
    purged = await purge_processed(db, now - timedelta(days=14))
    assert purged == 12
    assert await processed(db) == {f"e{index}" for index in range(0, 25, 2)}
