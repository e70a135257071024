"""The transactional outbox (events/outbox.py) on a real broker and both databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from events.broker import (
    EventProducer,
    KafkaProducer,
    KafkaSettings,
    build_broker,
    ensure_topics,
)
from events.db import Database
from events.embedded import EmbeddedBroker
from events.envelope import Envelope
from events.outbox import OutboxRecord, OutboxRelay, add_event
from schemas import Event, TeamCreated, UserLoggedIn
from tests.conftest import eventually
from tests.events.conftest import bus_settings, header, read_all, tansu_pid


def logins(user_id: str, count: int, start: int = 0) -> list[Event]:
    return [
        UserLoggedIn(user_id=user_id, session_id=f"{user_id}-s{i}")
        for i in range(start, start + count)
    ]


async def commit_each(db: Database, events: Iterable[Event]) -> list[Envelope]:
    """One transaction per event: the commit order is the list order."""
    envelopes = []
    for event in events:
        async with db.transaction() as session:
            envelopes.append(add_event(session, event))
    return envelopes


async def unsent(db: Database) -> set[str]:
    async with db.read() as session:
        rows = await session.scalars(
            select(OutboxRecord.event_id).where(OutboxRecord.sent_at.is_(None))
        )
        return set(rows)


async def outbox_size(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxRecord)) or 0)


async def drain(relay: OutboxRelay) -> list[int]:
    """Calls publish_pending until nothing is left; returns each batch's count."""
    counts = []
    while (published := await relay.publish_pending()) > 0:
        counts.append(published)
    return counts


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(relay.run())
    try:
        yield task
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)


def failures() -> float:
    return REGISTRY.get_sample_value("haunted_outbox_publish_failures_total") or 0.0


async def test_a_rolled_back_transaction_publishes_nothing(
    db: Database, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    relay = OutboxRelay(db, producer)
    with pytest.raises(RuntimeError, match="abort"):
        async with db.transaction() as session:
            add_event(session, UserLoggedIn(user_id="u1", session_id="rolled-back"))
            raise RuntimeError("abort")
    assert await outbox_size(db) == 0
    assert await relay.publish_pending() == 0

    (committed,) = await commit_each(db, logins("u1", 1))
    assert await relay.publish_pending() == 1
    records = await read_all(kafka_settings, "user.logged_in")
    assert [header(r, "ce_id") for r in records] == [committed.id]


async def test_events_are_published_in_commit_order_per_key(
    db: Database, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    committed: list[Envelope] = []
    for i in range(8):  # keys interleaved, topics mixed, one commit each
        committed += await commit_each(
            db,
            [
                *logins("alice", 1, start=i),
                *logins("bob", 1, start=i),
                TeamCreated(team_id="alice", owner_id=f"o{i}"),
            ],
        )
    relay = OutboxRelay(db, producer, batch_size=5)  # order must hold across batches
    assert sum(await drain(relay)) == len(committed)

    records = await read_all(kafka_settings, "user.logged_in", "team.created")
    assert len(records) == len(committed)
    published: dict[tuple[str, bytes | None], list[str]] = defaultdict(list)
    for record in records:  # partition order, which is what a consumer sees
        published[(record.topic, record.key)].append(header(record, "ce_id"))
    expected: dict[tuple[str, bytes | None], list[str]] = defaultdict(list)
    for envelope in committed:
        expected[(envelope.type, envelope.key)].append(envelope.id)
    assert published == expected
    partitions = defaultdict(set)
    for record in records:
        partitions[(record.topic, record.key)].add(record.partition)
    assert all(len(p) == 1 for p in partitions.values())  # one key, one partition


async def test_a_batch_of_a_thousand_reaches_the_topic_in_batches_of_batch_size(
    db: Database, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    async with db.transaction() as session:
        ids = {add_event(session, event).id for event in logins("u1", 500) + logins("u2", 500)}
    relay = OutboxRelay(db, producer, batch_size=400)
    assert await drain(relay) == [400, 400, 200]
    assert await unsent(db) == set()

    records = await read_all(kafka_settings, "user.logged_in")
    assert len(records) == 1000
    assert {header(r, "ce_id") for r in records} == ids


class GatedProducer:
    """The real producer, behind a gate the test may close.

    Needed for one reason: a restarted memory-only Tansu acks records for a
    topic it does not have yet, and keeps none of them. Real Kafka refuses
    them. So the test holds the relay's sends while the topics are recreated;
    every send still goes to the real broker.
    """

    def __init__(self, inner: EventProducer) -> None:
        self._inner = inner
        self._open = asyncio.Event()
        self._open.set()
        self._waiting = 0
        self._in_flight: set[asyncio.Future[object]] = set()

    async def send(
        self, topic: str, key: bytes, headers: dict[str, str], value: bytes
    ) -> asyncio.Future[object]:
        if not self._open.is_set():
            self._waiting += 1
            try:
                await self._open.wait()
            finally:
                self._waiting -= 1
        future = await self._inner.send(topic, key, headers, value)
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)
        return future

    async def close(self) -> None:
        """Returns once a send waits at the gate and none is out with the broker."""
        self._open.clear()

        async def idle() -> bool:
            return self._waiting > 0 and not self._in_flight

        await eventually(idle)

    def open(self) -> None:
        self._open.set()


async def test_events_committed_while_the_broker_is_down_are_published_when_it_returns(
    db: Database, kafka: EmbeddedBroker
) -> None:
    topics = ["user.logged_in", "team.created"]
    settings = bus_settings(kafka, request_timeout_ms=1000)  # a dead broker fails sends fast
    await ensure_topics(settings, topics)
    broker = build_broker(settings)
    await broker.connect()
    gate = GatedProducer(KafkaProducer(broker))
    relay = OutboxRelay(db, gate, poll_interval_s=0.05, max_backoff_s=0.3)
    restarted: EmbeddedBroker | None = None
    try:
        async with running(relay):
            before_outage = await commit_each(db, logins("u1", 3))
            await eventually(lambda: _all_sent(db))
            assert len(await read_all(settings, "user.logged_in")) == 3

            os.kill(tansu_pid(kafka), signal.SIGKILL)  # a crash, not a goodbye
            await kafka.stop()  # reaps it
            failed_before = failures()
            during_outage = await commit_each(
                db,
                [
                    *logins("u1", 10, start=3),
                    *logins("u2", 10),
                    TeamCreated(team_id="t1", owner_id="u1"),
                ],
            )

            async def relay_failed() -> bool:
                return failures() > failed_before

            await eventually(relay_failed)
            # The relay tried and no broker acked: nothing was marked sent.
            assert await unsent(db) == {e.id for e in during_outage}

            await gate.close()
            # Tansu is memory-only: a new one on the same port, topics recreated.
            restarted = EmbeddedBroker(kafka.port)
            await restarted.start()
            await ensure_topics(settings, topics)
            gate.open()
            # The relay's own run() loop recovers: nothing here calls it.
            await eventually(lambda: _all_sent(db), timeout_s=20)

        records = await read_all(settings, *topics)
        received = [header(r, "ce_id") for r in records]
        # At least once: every event committed during the outage is there.
        assert {e.id for e in during_outage} <= set(received)
        assert {e.id for e in before_outage}.isdisjoint(received)  # gone with the old broker
    finally:
        await broker.stop()
        if restarted is not None:
            await restarted.stop()


async def _all_sent(db: Database) -> bool:
    return await outbox_size(db) > 0 and not await unsent(db)


async def test_wake_after_commit_publishes_before_the_poll_interval(
    db: Database, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    # An hour between polls: only the after-commit wake can get these out in time.
    relay = OutboxRelay(db, producer, poll_interval_s=3600)
    async with running(relay):
        (first,) = await commit_each(db, logins("u1", 1))
        await eventually(lambda: _all_sent(db))
        # Now the relay is idle, waiting for the next poll or a wake.
        (second,) = await commit_each(db, logins("u1", 1, start=1))
        await eventually(lambda: _all_sent(db))
    records = await read_all(kafka_settings, "user.logged_in")
    assert [header(r, "ce_id") for r in records] == [first.id, second.id]


async def test_purge_sent_deletes_only_old_sent_rows(db: Database, producer: KafkaProducer) -> None:
    relay = OutboxRelay(db, producer, retention_s=3600)
    old, recent = await commit_each(db, logins("u1", 2))
    assert await relay.publish_pending() == 2
    (pending,) = await commit_each(db, logins("u1", 1, start=2))
    long_ago = datetime.now(UTC) - timedelta(hours=5)
    async with db.transaction() as session:
        await session.execute(
            update(OutboxRecord).where(OutboxRecord.event_id == old.id).values(sent_at=long_ago)
        )
        # Old but never sent: must survive any purge.
        await session.execute(
            update(OutboxRecord)
            .where(OutboxRecord.event_id == pending.id)
            .values(created_at=long_ago)
        )

    await relay.purge_sent()

    async with db.read() as session:
        left = set(await session.scalars(select(OutboxRecord.event_id)))
    assert left == {recent.id, pending.id}
    assert await unsent(db) == {pending.id}
