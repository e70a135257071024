"""The transactional outbox (events/outbox.py) on a real broker and both databases."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from events.broker import (
    KafkaSettings,
    OrderedPublisher,
    OutgoingRecord,
    RelayProducer,
    ensure_topics,
)
from events.consumer import is_infrastructure
from events.db import Database
from events.embedded import EmbeddedBroker
from events.envelope import Envelope
from events.outbox import OutboxRecord, OutboxRelay, add_event
from schemas import Event, TeamCreated, UserLoggedIn
from tests.conftest import _pg_admin, eventually, pg_url
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
    db: Database, relay_producer: RelayProducer, kafka_settings: KafkaSettings
) -> None:
    relay = OutboxRelay(db, relay_producer)
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
    db: Database, relay_producer: RelayProducer, kafka_settings: KafkaSettings
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
    relay = OutboxRelay(db, relay_producer, batch_size=5)  # order must hold across batches
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
    db: Database, relay_producer: RelayProducer, kafka_settings: KafkaSettings
) -> None:
    async with db.transaction() as session:
        ids = {add_event(session, event).id for event in logins("u1", 500) + logins("u2", 500)}
    relay = OutboxRelay(db, relay_producer, batch_size=400)
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

    def __init__(self, inner: OrderedPublisher) -> None:
        self._inner = inner
        self._open = asyncio.Event()
        self._open.set()
        self._waiting = 0
        self._in_flight = 0

    async def publish_in_order(
        self, records: Sequence[OutgoingRecord]
    ) -> list[BaseException | None]:
        if not self._open.is_set():
            self._waiting += 1
            try:
                await self._open.wait()
            finally:
                self._waiting -= 1
        self._in_flight += 1
        try:
            return await self._inner.publish_in_order(records)
        finally:
            self._in_flight -= 1

    async def close(self) -> None:
        """Returns once a send waits at the gate and none is out with the broker."""
        self._open.clear()

        async def idle() -> bool:
            return self._waiting > 0 and self._in_flight == 0

        await eventually(idle)

    def open(self) -> None:
        self._open.set()


async def test_events_committed_while_the_broker_is_down_are_published_when_it_returns(
    db: Database, kafka: EmbeddedBroker
) -> None:
    topics = ["user.logged_in", "team.created"]
    settings = bus_settings(kafka, request_timeout_ms=1000)  # a dead broker fails sends fast
    await ensure_topics(settings, topics)
    sender = RelayProducer(settings)
    gate = GatedProducer(sender)
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
        # And in commit order per key: each key's first copies in the order committed.
        published: dict[tuple[str, bytes | None], list[str]] = defaultdict(list)
        for record in records:  # partition order: what a consumer sees
            event_id = header(record, "ce_id")
            if event_id not in published[(record.topic, record.key)]:
                published[(record.topic, record.key)].append(event_id)
        expected: dict[tuple[str, bytes | None], list[str]] = defaultdict(list)
        for envelope in during_outage:
            expected[(envelope.type, envelope.key)].append(envelope.id)
        assert dict(published) == dict(expected)
    finally:
        await sender.stop()
        if restarted is not None:
            await restarted.stop()


async def _all_sent(db: Database) -> bool:
    return await outbox_size(db) > 0 and not await unsent(db)


async def test_wake_after_commit_publishes_before_the_poll_interval(
    db: Database, relay_producer: RelayProducer, kafka_settings: KafkaSettings
) -> None:
    # An hour between polls: only the after-commit wake can get these out in time.
    relay = OutboxRelay(db, relay_producer, poll_interval_s=3600)
    async with running(relay):
        (first,) = await commit_each(db, logins("u1", 1))
        await eventually(lambda: _all_sent(db))
        # Now the relay is idle, waiting for the next poll or a wake.
        (second,) = await commit_each(db, logins("u1", 1, start=1))
        await eventually(lambda: _all_sent(db))
    records = await read_all(kafka_settings, "user.logged_in")
    assert [header(r, "ce_id") for r in records] == [first.id, second.id]


async def test_purge_sent_deletes_only_old_sent_rows(
    db: Database, relay_producer: RelayProducer
) -> None:
    relay = OutboxRelay(db, relay_producer, retention_s=3600)
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


# This test's database only: pg_locks shows every database's locks, and a relay of
# another test run (or a benchmark) on the same server holds the same key in its own.
LOCK_HOLDERS = """
    SELECT pid FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND objid = 4851477 AND classid = 0
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"""


class Observer:
    """One connection for the test and the relays' fenced sends: a query at a time
    (asyncpg refuses a second one while the first is in progress)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._turn = asyncio.Lock()

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        async with self._turn:
            return list(await self._connection.fetch(query, *args))

    async def execute(self, query: str, *args: Any) -> str:
        async with self._turn:
            return str(await self._connection.execute(query, *args))

    async def close(self) -> None:
        await self._connection.close()


class FencedProducer:
    """The real producer, behind a check of every send: PostgreSQL must say that the
    sending relay's own lock connection holds the relay lock at that moment."""

    def __init__(self, inner: OrderedPublisher, observer: Observer) -> None:
        self._inner = inner
        self._observer = observer
        self.relay: OutboxRelay | None = None
        self.sent: list[str] = []
        self.unfenced: list[str] = []

    async def publish_in_order(
        self, records: Sequence[OutgoingRecord]
    ) -> list[BaseException | None]:
        holders = {row["pid"] for row in await self._observer.fetch(LOCK_HOLDERS)}
        assert self.relay is not None
        ids = [record.headers["ce_id"] for record in records]
        if self.relay.lease_pid is None or holders != {self.relay.lease_pid}:
            self.unfenced += ids
        self.sent += ids
        return await self._inner.publish_in_order(records)


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database with the tables (leadership is PostgreSQL's)."""
    name = f"haunted_relay_{uuid.uuid4().hex[:12]}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        database = Database(pg_url(name))
        await database.create_all()
        await database.dispose()
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_relay_whose_lock_connection_dies_stops_publishing_and_one_other_leads(
    relay_producer: RelayProducer,
) -> None:
    async with postgres_database() as name:
        observer = Observer(await asyncpg.connect(pg_url(name, "postgresql")))
        workers = [Database(pg_url(name)), Database(pg_url(name))]
        producers = [
            FencedProducer(relay_producer, observer),
            FencedProducer(relay_producer, observer),
        ]
        relays = [
            OutboxRelay(db, sender, poll_interval_s=0.02, max_backoff_s=0.2)
            for db, sender in zip(workers, producers, strict=True)
        ]
        for relay, sender in zip(relays, producers, strict=True):
            sender.relay = relay
        try:
            async with running(relays[0]), running(relays[1]):

                async def one_leads() -> OutboxRelay | None:
                    leaders = [relay for relay in relays if relay.leading]
                    assert len(leaders) <= 1, "two relays lead at once"
                    holders = await observer.fetch(LOCK_HOLDERS)
                    return leaders[0] if len(leaders) == 1 and len(holders) == 1 else None

                async def published() -> bool:
                    await one_leads()  # never two at once meanwhile
                    return await _all_sent(workers[0])

                first = await eventually(one_leads)
                await commit_each(workers[0], logins("u1", 5))
                await eventually(published)

                # The leader's lock connection is cut (a network blip, a failover, an
                # operator): its lock is gone, and its leadership with it.
                (holder,) = await observer.fetch(LOCK_HOLDERS)
                assert holder["pid"] == first.lease_pid
                await observer.execute("SELECT pg_terminate_backend($1)", holder["pid"])
                await commit_each(workers[1], logins("u1", 5, start=5))
                await eventually(published, timeout_s=20)

                # Every connection cut at once, the waiting relay's too: both come
                # back on their own, and one leads and publishes again.
                await observer.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )

                async def written() -> bool:
                    # This writer's pooled connections were cut too: its first statement
                    # may fail on one, as a client's would after a failover, and is retried.
                    try:
                        await commit_each(workers[0], logins("u2", 3))
                    except Exception as error:
                        if not is_infrastructure(error):
                            raise
                        return False
                    return True

                await eventually(written)
                await eventually(published, timeout_s=20)
                await eventually(one_leads)
        finally:
            await observer.close()
            for db in workers:
                await db.dispose()
    assert sum(len(sender.sent) for sender in producers) >= 13
    # Every send, by either relay, went out while its own connection held the lock.
    assert [sender.unfenced for sender in producers] == [[], []]


class RefusingProducer(AIOKafkaProducer):  # type: ignore[misc]
    """A real producer that fails its first produce batch for one partition, as a
    broker that timed out on it would, and sends everything else as it is."""

    def __init__(self, refused: TopicPartition, **options: Any) -> None:
        super().__init__(**options)
        self.refused = refused
        self.refusals = 0

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        if (topic, partition) == self.refused and self.refusals == 0:
            self.refusals += 1
            raise KafkaTimeoutError("the broker did not ack this batch in time")
        return await super().send_batch(batch, topic, partition=partition)


class RefusingRelayProducer(RelayProducer):
    def __init__(self, kafka: KafkaSettings, refused: TopicPartition) -> None:
        # Small batches: a round of one key spans several, after the refused one.
        super().__init__(kafka, max_batch_bytes=2048)
        self.refused = refused
        self.producer: RefusingProducer | None = None

    def build(self, **options: Any) -> AIOKafkaProducer:
        self.producer = RefusingProducer(self.refused, **options)
        return self.producer


async def test_a_refused_batch_never_lets_later_events_of_its_key_go_first(
    db: Database, kafka_settings: KafkaSettings
) -> None:
    partitions = list(range(kafka_settings.partitions))
    hot = TopicPartition("user.logged_in", DefaultPartitioner()(b"u1", partitions, partitions))
    async with db.transaction() as session:  # interleaved keys, one commit
        committed = [
            add_event(session, event)
            for pair in zip(logins("u1", 30), logins("u2", 30), strict=True)
            for event in pair
        ]
    sender = RefusingRelayProducer(kafka_settings, hot)
    relay = OutboxRelay(db, sender)
    try:
        with pytest.raises(ConnectionError, match="broker refused"):
            await relay.publish_pending()
        assert sender.producer is not None and sender.producer.refusals == 1
        assert sum(await drain(relay)) > 0
    finally:
        await sender.stop()
    assert await unsent(db) == set()

    records = await read_all(kafka_settings, "user.logged_in")
    published: dict[bytes | None, list[str]] = defaultdict(list)
    for record in records:  # partition order: what a consumer sees
        published[record.key].append(header(record, "ce_id"))
    expected: dict[bytes | None, list[str]] = defaultdict(list)
    for envelope in committed:
        expected[envelope.key].append(envelope.id)
    # Each key's events in commit order, each once: none of u1's went out before
    # the refused batch did, and nothing was published twice.
    assert published == expected


async def test_a_slow_statement_on_the_lock_connection_keeps_the_leadership(
    relay_producer: RelayProducer,
) -> None:
    """The database is slow, not gone: PostgreSQL cancels the relay's statement at its
    lease timeout, and the relay retries on the same connection, still leading (the
    driver is never cancelled mid-operation, so the connection is never lost)."""
    async with postgres_database() as name:
        db = Database(pg_url(name))
        observer = await asyncpg.connect(pg_url(name, "postgresql"))
        blocker = await asyncpg.connect(pg_url(name, "postgresql"))
        relay = OutboxRelay(
            db, relay_producer, poll_interval_s=0.02, max_backoff_s=0.1, lease_timeout_s=0.3
        )

        async def waits() -> bool:  # the relay's own statement waits for the table's lock
            return bool(
                await observer.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1",
                    relay.lease_pid,
                )
            )

        async def leads() -> bool:
            return relay.leading and relay.lease_pid is not None

        try:
            async with running(relay):
                await eventually(leads)
                pid = relay.lease_pid
                stuck = blocker.transaction()
                await stuck.start()
                await blocker.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
                # Positive markers: it waits, is cancelled (stops waiting), and waits
                # again, on the same connection.
                await eventually(waits)
                await eventually(lambda: _negated(waits))
                await eventually(waits)
                assert (relay.leading, relay.lease_pid) == (True, pid)
                await stuck.rollback()
                await commit_each(db, logins("u1", 3))
                await eventually(lambda: _all_sent(db))
                assert (relay.leading, relay.lease_pid) == (True, pid)
        finally:
            await observer.close()
            await blocker.close()
            await db.dispose()


async def _negated(check: Any) -> bool:
    return not await check()


async def test_the_relay_hands_its_batches_to_the_broker_without_lingering(
    db: Database, kafka_settings: KafkaSettings
) -> None:
    """The relay sends whole batches and awaits their acks: a linger would only delay
    each round (5 ms per login-to-push, before)."""
    built: dict[str, Any] = {}

    class Recording(RelayProducer):
        def build(self, **options: Any) -> AIOKafkaProducer:
            built.update(options)
            return super().build(**options)

    producer = Recording(kafka_settings)
    try:
        (committed,) = await commit_each(db, logins("u1", 1))
        assert await OutboxRelay(db, producer).publish_pending() == 1
    finally:
        await producer.stop()
    assert built["linger_ms"] == 0
    records = await read_all(kafka_settings, "user.logged_in")
    assert [header(r, "ce_id") for r in records] == [committed.id]
