"""Idempotent consumption with retries and dead letters.

Each service registers handlers: `async def handler(session, event, envelope)`.
For every record the handler's writes and a processed-event row (consumer,
event id) commit in one transaction, so a redelivered event changes nothing.

What happens to a failure depends on its kind (`is_infrastructure`):
- an outage (database, Redis or broker unreachable, timeouts, pool exhausted,
  deadlock or serialization failure, a handler past its time limit) is waited
  out without limit: the group's partitions go back to the first record not
  stored and are paused for a capped, jittered exponential backoff, while the
  consumer keeps polling (so it stays in its group) and commits nothing past it;
- an error that will repeat (undecodable or schema-invalid record, a handler's
  refusal) is retried a few times, then the record goes to `<topic>.dlq` with
  the error, group, attempts and original position in its headers, and the
  consumer goes on. Dead letters are counted in `haunted_dead_letters_total`.

Batch consumers (`subscribe_batch`) write a whole fetch in one transaction and
keep no processed-event rows: their writes are idempotent by themselves. They
write batches while the next are fetched and decoded, and commit each batch's
own offsets once it and every batch before it are durable (see `_WriteBehind`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import String, delete, select, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from events.broker import DLQ_SUFFIX, Bus, EventProducer, KafkaSettings, Subscriber, rewind
from events.db import Base, Database
from events.envelope import Envelope, MalformedEvent
from events.metrics import CONSUMER_WAITS, DEAD_LETTERS, EVENTS_HANDLED, HANDLE_SECONDS
from events.tracing import batch_span, process_span
from schemas import Event

log = structlog.get_logger(__name__)

EventHandler = Callable[[AsyncSession, Event, Envelope], Awaitable[None]]
# Writes many events in one transaction; must be idempotent on its own (e.g. keyed
# by the event id), since batch consumers keep no processed-event rows.
# Returns how many of the events it stored anew (the rest were there already: a
# redelivery or a replay), or None when it cannot tell (all count as handled).
BatchHandler = Callable[[AsyncSession, Sequence[tuple[Envelope, Event]]], Awaitable[int | None]]
Record: TypeAlias = ConsumerRecord[bytes, bytes]
Decoded = tuple[Record, Envelope, Event]
DECODE_SLICE = 1_000  # records decoded between two turns of the event loop


class ProcessedEvent(Base):
    """Which consumer already handled which event: the idempotency record."""

    __tablename__ = "processed_events"

    consumer: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Indexed for the purge: rows older than the window a redelivery can come in
    # (topic retention plus a replay) are deleted by `purge_processed`.
    processed_at: Mapped[datetime] = mapped_column(index=True)


PURGE_CHUNK = 10_000  # rows per delete: short transactions, no long lock on the table


async def purge_processed(db: Database, older_than: datetime) -> int:
    """Deletes idempotency rows older than `older_than`, a chunk per transaction."""
    purged = 0
    while True:
        chunk = (
            select(ProcessedEvent.consumer, ProcessedEvent.event_id)
            .where(ProcessedEvent.processed_at < older_than)
            .limit(PURGE_CHUNK)
        )
        async with db.transaction() as session:
            result = await session.execute(
                delete(ProcessedEvent).where(
                    tuple_(ProcessedEvent.consumer, ProcessedEvent.event_id).in_(chunk)
                )
            )
        deleted = int(getattr(result, "rowcount", 0) or 0)
        purged += deleted
        if deleted < PURGE_CHUNK:
            return purged


class Outcome(StrEnum):
    HANDLED = "handled"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_attempts` for an error that will repeat, then a dead letter; an outage
    is waited out without limit, `backoff_s` doubling up to `max_backoff_s`."""

    max_attempts: int = 3
    backoff_s: float = 0.1
    max_backoff_s: float = 30.0
    # A handler (or a batch write) running longer is treated as an outage.
    handler_timeout_s: float = 60.0

    def delay(self, attempt: int) -> float:
        """The wait after the `attempt`th failure in a row: exponential, capped, and
        jittered (half fixed, half random) so that a fleet does not retry in step."""
        ceiling = min(self.max_backoff_s, max(self.backoff_s, 0.01) * 2 ** max(0, attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (not a secret)


# SQLSTATE classes and codes of failures that pass: connection exceptions (08),
# insufficient resources (53), operator intervention such as a shutdown or a
# cancelled statement (57), system errors (58), serialization failure and
# deadlock (40001, 40P01), lock not available (55P03).
_TRANSIENT_SQLSTATES = ("08", "53", "57", "58", "40001", "40P01", "55P03")


def is_infrastructure(error: BaseException) -> bool:
    """Whether `error` says a dependency is away (wait, never dead-letter) rather
    than that the record itself cannot be handled. Wrapped errors count by cause."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            OSError  # refused, reset, unreachable (ConnectionError is one)
            | TimeoutError
            | KafkaError
            | RedisConnectionError
            | RedisTimeoutError
            | PoolTimeoutError
            | OperationalError
            | InterfaceError,
        ):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, Stalled):
            return True
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str) and code.startswith(_TRANSIENT_SQLSTATES):
            return True
        current = current.__cause__ or current.__context__
    return False


class Stalled(Exception):
    """A dependency is away: the records from this one on are fetched again later."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


def _record_span(consumer: str, record: Record, envelope: Envelope) -> Any:
    """The `process <topic>` span of one record of the group `haunted.<consumer>`."""
    return process_span(
        envelope,
        f"haunted.{consumer}",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )


class EventConsumers:
    """Builds the subscribers of the services a process runs."""

    def __init__(
        self,
        db: Database,
        producer: EventProducer,
        kafka: KafkaSettings,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._db = db
        self._producer = producer
        self._kafka = kafka
        self._retry = retry or RetryPolicy()
        self._writers: list[_WriteBehind] = []
        self._pauses: list[_Pause] = []
        self._closing = False
        # (group, subscriber, topics) of every group this process joins: lag and zeroed counts.
        self.groups: list[tuple[str, Subscriber, list[str]]] = []

    def subscribe(
        self,
        bus: Bus,
        consumer: str,
        topics: Iterable[str],
        handler: EventHandler,
    ) -> None:
        """Adds a consumer group `haunted.<consumer>` over `topics` to `router`.

        A new group starts at the earliest retained offset, so a new service (or
        a reset group) builds its state from history. Offsets are committed
        after each batch is handled; a crash redelivers, and idempotency absorbs it.
        """
        topics = list(topics)
        self._count_dead_letters(consumer, topics)
        pause = _Pause(consumer, self._retry)
        self._pauses.append(pause)

        async def on_batch(records: Sequence[Record], kafka: AIOKafkaConsumer) -> None:
            for index, record in enumerate(records):
                if self._closing:  # stopping: commit what is handled; the rest comes again
                    await self.commit(consumer, kafka, records[:index])
                    rewind(kafka, records[index:])
                    return
                try:
                    await self.handle_record(consumer, record, handler)
                except Stalled as stalled:
                    await self.commit(consumer, kafka, records[:index])
                    pause.hold(kafka, records[index:], stalled.error)
                    return
            await self.commit(consumer, kafka, records)
            pause.clear()

        self._group_subscriber(bus, consumer, topics, 500, on_batch)

    def subscribe_batch(
        self,
        bus: Bus,
        consumer: str,
        topics: Iterable[str],
        handler: BatchHandler,
        *,
        max_records: int = 10_000,
        in_flight: int = 2,
    ) -> None:
        """Like `subscribe`, but each fetched batch is written in one transaction,
        while the next ones are fetched, decoded and written (up to `in_flight`
        batches at once, each in its own transaction and connection)."""
        topics = list(topics)
        self._count_dead_letters(consumer, topics)
        writer = _WriteBehind(self, consumer, handler, in_flight, _Pause(consumer, self._retry))
        self._writers.append(writer)

        self._group_subscriber(bus, consumer, topics, max_records, writer.submit)

    @property
    def request_timeout_s(self) -> float:
        return self._kafka.request_timeout_ms / 1000

    @property
    def retry(self) -> RetryPolicy:
        return self._retry

    async def drain(self) -> None:
        """At stop, before the broker stops: no new batch is taken, and the batches
        being written finish and commit (bounded by the request timeout; past it
        they roll back, uncommitted, and come again after the restart)."""
        self._closing = True
        for pause in self._pauses:
            pause.clear()
        for writer in self._writers:
            writer.close()
        for writer in self._writers:
            await writer.drain(self.request_timeout_s)

    async def commit(
        self, consumer: str, kafka: AIOKafkaConsumer, records: Sequence[Record]
    ) -> None:
        """Commits past `records` (all stored), partition by partition. A commit that
        fails only means they come again, which idempotency absorbs."""
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if not offsets:
            return
        try:
            await asyncio.wait_for(kafka.commit(offsets), self.request_timeout_s)
        except (KafkaError, AssertionError, TimeoutError) as error:  # asserts once stopped
            log.warning(
                "offsets not committed; the records will be delivered again",
                consumer=consumer,
                error=repr(error),
            )

    async def until_stored(self, consumer: str, attempt: Callable[[], Awaitable[Any]]) -> Any:
        """`attempt` until it passes an outage, waiting as a group would (for replays,
        which hold no group and so need not keep polling)."""
        failures = 0
        while True:
            try:
                return await attempt()
            except Stalled as stalled:
                failures += 1
                CONSUMER_WAITS.labels(consumer).inc()
                delay = self._retry.delay(failures)
                log.warning(
                    "dependency away; waiting",
                    consumer=consumer,
                    error=str(stalled),
                    wait_s=round(delay, 2),
                )
                await asyncio.sleep(delay)

    @staticmethod
    def _count_dead_letters(consumer: str, topics: Iterable[str]) -> None:
        # Series at 0 from the start, so that an alert on their increase can fire.
        for topic in topics:
            DEAD_LETTERS.labels(consumer, topic)

    def _group_subscriber(
        self,
        bus: Bus,
        consumer: str,
        topics: list[str],
        max_records: int,
        on_records: Callable[[Sequence[Record], AIOKafkaConsumer], Awaitable[None]],
    ) -> Subscriber:
        """The group `haunted.<consumer>`, from the earliest offset when new; its
        handler commits (auto commit is off)."""
        subscriber = bus.add(
            Subscriber(
                self._kafka,
                topics,
                on_records,
                group_id=f"haunted.{consumer}",
                name=f"haunted.{consumer}",
                auto_offset_reset="earliest",
                max_records=max_records,
            )
        )
        self.groups.append((f"haunted.{consumer}", subscriber, topics))
        return subscriber

    async def handle_batch(
        self,
        consumer: str,
        records: Sequence[ConsumerRecord[bytes, bytes]],
        handler: BatchHandler,
    ) -> list[Outcome]:
        """Writes the batch's events in one transaction. Malformed records go to
        the DLQ; if the batch fails, each record is retried alone, so one poison
        record is dead-lettered and the others land."""
        decoded, outcomes = await self.decode_batch(consumer, records)
        return outcomes + await self.write_batch(consumer, decoded, handler)

    async def decode_batch(
        self, consumer: str, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[Decoded], list[Outcome]]:
        """The batch's events, typed; malformed records are dead-lettered here."""
        outcomes: list[Outcome] = []
        decoded: list[Decoded] = []
        for start in range(0, len(records), DECODE_SLICE):
            if start:
                # Let the batch being written go on (its result, its commit) meanwhile.
                await asyncio.sleep(0)
            # The slice's envelopes first, then their data validated as one list per
            # type (Envelope.decode_many); dead letters in record order.
            chunk = records[start : start + DECODE_SLICE]
            envelopes: list[Envelope | MalformedEvent] = []
            for record in chunk:
                try:
                    envelopes.append(Envelope.from_record(record.headers, record.value))
                except MalformedEvent as error:
                    envelopes.append(error)
            events = iter(
                Envelope.decode_many([e for e in envelopes if not isinstance(e, MalformedEvent)])
            )
            for record, envelope in zip(chunk, envelopes, strict=True):
                event = envelope if isinstance(envelope, MalformedEvent) else next(events)
                if isinstance(event, MalformedEvent):
                    await self._dead_letter(consumer, record, event, attempts=0)
                    EVENTS_HANDLED.labels(consumer, "malformed", Outcome.DEAD_LETTERED).inc()
                    outcomes.append(Outcome.DEAD_LETTERED)
                else:
                    decoded.append((record, envelope, event))  # type: ignore[arg-type]
        return decoded, outcomes

    async def write_batch(
        self, consumer: str, decoded: Sequence[Decoded], handler: BatchHandler
    ) -> list[Outcome]:
        """One transaction for the batch; if it fails for a reason of its own, one
        per record (so that one bad record is dead-lettered and the rest land).
        An outage raises `Stalled`: the batch is not split, it comes again."""
        if not decoded:
            return []
        started = time.perf_counter()
        span = batch_span(
            f"haunted.{consumer}", (envelope for _, envelope, _ in decoded), len(decoded)
        )
        try:
            with trace.use_span(span, end_on_exit=True):
                async with asyncio.timeout(self._retry.handler_timeout_s):
                    async with self._db.transaction() as session:
                        stored = await handler(
                            session, [(envelope, event) for _, envelope, event in decoded]
                        )
        except Exception as error:
            if is_infrastructure(error):
                raise Stalled(error) from error
            log.warning("batch failed; handling its records one by one", error=repr(error))
            outcomes = [await self._handle_one(consumer, item, handler) for item in decoded]
        else:
            new = len(decoded) if stored is None else min(max(stored, 0), len(decoded))
            outcomes = [Outcome.HANDLED] * new + [Outcome.DUPLICATE] * (len(decoded) - new)
            # Per type, every event counts as handled: the handler says how many were
            # new, not of which type (the report's duplicates come from `outcomes`).
            for kind, count in Counter(envelope.type for _, envelope, _ in decoded).items():
                EVENTS_HANDLED.labels(consumer, kind, Outcome.HANDLED).inc(count)
        HANDLE_SECONDS.labels(consumer).observe(time.perf_counter() - started)
        return outcomes

    async def _handle_one(self, consumer: str, item: Decoded, handler: BatchHandler) -> Outcome:
        record, envelope, event = item

        async def store_alone() -> Outcome:
            async with asyncio.timeout(self._retry.handler_timeout_s):
                async with self._db.transaction() as session:
                    stored = await handler(session, [(envelope, event)])
            return Outcome.DUPLICATE if stored == 0 else Outcome.HANDLED

        span = _record_span(consumer, record, envelope)
        with trace.use_span(span, end_on_exit=True):
            outcome = await self._retried(consumer, record, envelope, store_alone)
        EVENTS_HANDLED.labels(consumer, envelope.type, outcome).inc()
        return outcome

    async def handle_record(
        self, consumer: str, record: ConsumerRecord[bytes, bytes], handler: EventHandler
    ) -> Outcome:
        started = time.perf_counter()
        try:
            envelope = Envelope.from_record(record.headers, record.value)
            event = envelope.decode()
        except MalformedEvent as error:
            await self._dead_letter(consumer, record, error, attempts=0)
            EVENTS_HANDLED.labels(consumer, "malformed", Outcome.DEAD_LETTERED).inc()
            return Outcome.DEAD_LETTERED

        span = _record_span(consumer, record, envelope)
        with trace.use_span(span, end_on_exit=True):
            outcome = await self._retried(
                consumer, record, envelope, lambda: self.apply(consumer, envelope, event, handler)
            )
            span.set_attribute("haunted.outcome", str(outcome))
        EVENTS_HANDLED.labels(consumer, envelope.type, outcome).inc()
        HANDLE_SECONDS.labels(consumer).observe(time.perf_counter() - started)
        return outcome

    async def _retried(
        self,
        consumer: str,
        record: Record,
        envelope: Envelope,
        attempt: Callable[[], Awaitable[Outcome]],
    ) -> Outcome:
        """`attempt`, retried with backoff while it fails for a reason of its own;
        after `max_attempts` the record is dead-lettered and the consumer goes on.
        An outage is never the record's fault: it raises `Stalled` at once."""
        failures = 0
        while True:
            try:
                async with asyncio.timeout(self._retry.handler_timeout_s):
                    return await attempt()
            except Exception as error:
                if is_infrastructure(error):
                    raise Stalled(error) from error
                failures += 1
                if failures >= self._retry.max_attempts:
                    log.warning(
                        "event dead-lettered",
                        consumer=consumer,
                        event_id=envelope.id,
                        type=envelope.type,
                        error=repr(error),
                    )
                    await self._dead_letter(consumer, record, error, attempts=failures)
                    return Outcome.DEAD_LETTERED
                await asyncio.sleep(self._retry.delay(failures))

    async def apply(
        self, consumer: str, envelope: Envelope, event: Event, handler: EventHandler
    ) -> Outcome:
        """Runs `handler` once per (consumer, event id), its writes and that record as one."""
        try:
            async with self._db.transaction() as session:
                if await session.get(ProcessedEvent, (consumer, envelope.id)) is not None:
                    return Outcome.DUPLICATE
                session.add(
                    ProcessedEvent(
                        consumer=consumer, event_id=envelope.id, processed_at=datetime.now(UTC)
                    )
                )
                await handler(session, event, envelope)
        except IntegrityError:
            # A concurrent delivery of the same event committed first; if it was
            # not that, the handler's own constraint failed and retrying will tell.
            async with self._db.read() as session:
                if await session.get(ProcessedEvent, (consumer, envelope.id)) is not None:
                    return Outcome.DUPLICATE
            raise
        return Outcome.HANDLED

    async def _dead_letter(
        self, consumer: str, record: ConsumerRecord[bytes, bytes], error: Exception, attempts: int
    ) -> None:
        headers = {name: (value or b"").decode(errors="replace") for name, value in record.headers}
        headers.update(
            {
                "dlq_error": f"{type(error).__name__}: {error}"[:1000],
                "dlq_consumer": consumer,
                "dlq_topic": record.topic,
                "dlq_partition": str(record.partition),
                "dlq_offset": str(record.offset),
                "dlq_attempts": str(attempts),
                "dlq_time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
        )
        try:
            sent = await self._producer.send(
                record.topic + DLQ_SUFFIX, record.key or b"", headers, record.value or b""
            )
            await sent  # rare path: wait, so the offset is committed only once the record is safe
        except Exception as failure:
            # The broker is away: the record stays where it is until it can be dead-lettered.
            raise Stalled(failure) from failure
        DEAD_LETTERS.labels(consumer, record.topic).inc()


class _WriteBehind:
    """Writes batches while the subscriber fetches and decodes the next ones.

    Up to `in_flight` batches are written at once, each in its own transaction:
    the database works on one while this process decodes another. Offsets are
    committed in batch order, each batch's own (its last record + 1 per
    partition) and only once it and every batch before it are stored; never the
    consumer's position, which is already past the batches in flight. When a
    batch cannot be stored, no later one commits, every partition goes back
    to the first record not stored, and the group pauses for a backoff. A commit
    that fails (e.g. the partition moved in a rebalance) only means the batch
    comes again: batch handlers are idempotent.
    """

    def __init__(
        self,
        consumers: EventConsumers,
        consumer: str,
        handler: BatchHandler,
        in_flight: int,
        pause: _Pause,
    ) -> None:
        self._consumers = consumers
        self._consumer = consumer
        self._handler = handler
        self._in_flight = max(1, in_flight)
        self._pause = pause
        self._closing = False
        self._flights: deque[tuple[asyncio.Task[None], Sequence[Record]]] = deque()

    def close(self) -> None:
        self._closing = True

    async def submit(self, records: Sequence[Record], kafka: AIOKafkaConsumer) -> None:
        if self._closing:  # stopping: not taken, not committed; it comes again
            rewind(kafka, records)
            return
        try:
            decoded, _ = await self._consumers.decode_batch(self._consumer, records)
            while self._flights and (
                len(self._flights) >= self._in_flight or self._flights[0][0].done()
            ):
                await self._flights[0][0]
                self._flights.popleft()
        except Exception as error:
            # A batch in flight was not stored, or this one could not be decoded
            # (its dead letters not sent): back to the first record not stored,
            # and wait (polling, paused) for whatever failed to come back.
            self._pause.hold(kafka, [*self._pending_records(), *records], error)
            self._flights.clear()  # the later ones end without committing
            return
        previous = self._flights[-1][0] if self._flights else None
        task = asyncio.create_task(self._store(decoded, kafka, records, previous))
        # A batch dropped from the flights after a failure ends on its own; its
        # error was seen (and logged) through the first failing one.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._flights.append((task, records))

    async def drain(self, timeout_s: float) -> None:
        """Lets the batches in flight finish; past `timeout_s` they are cancelled
        (rolled back, their offsets not committed: they will come again)."""
        self._pause.clear()
        tasks = [task for task, _ in self._flights]
        self._flights.clear()
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout_s)
        for task in late:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.warning("a batch was not stored; it will come again", error=repr(outcome))

    def _pending_records(self, since: asyncio.Task[None] | None = None) -> list[Record]:
        """The records of the batches in flight; with `since`, of it and those after it."""
        flights = list(self._flights)
        tasks = [task for task, _ in flights]
        start = 0 if since is None else tasks.index(since) if since in tasks else len(flights)
        return [record for _, records in flights[start:] for record in records]

    async def _store(
        self,
        decoded: Sequence[Decoded],
        kafka: AIOKafkaConsumer,
        records: Sequence[Record],
        previous: asyncio.Task[None] | None,
    ) -> None:
        failure: Exception | None = None
        try:
            await self._consumers.write_batch(self._consumer, decoded, self._handler)
        except Exception as error:
            failure = error
        if previous is not None:
            await asyncio.wait([previous])
            if previous.cancelled() or previous.exception() is not None:
                raise _NotStoredBefore()  # that batch rewound the partitions, this one too
        if failure is not None:
            self._pause.hold(
                kafka, [*records, *self._pending_records(since=asyncio.current_task())], failure
            )
            raise failure
        await self._consumers.commit(self._consumer, kafka, records)
        self._pause.clear()


class _Pause:
    """How one group waits out an outage: its partitions rewound to the first record
    not stored and paused for a backoff that grows with each failure in a row
    (the consumer goes on polling meanwhile, so it keeps its place in the group),
    then resumed. A success starts the count again."""

    def __init__(self, consumer: str, retry: RetryPolicy) -> None:
        self._consumer = consumer
        self._retry = retry
        self._failures = 0
        self._last: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None

    def hold(
        self, kafka: AIOKafkaConsumer, records: Sequence[Record], error: BaseException
    ) -> None:
        rewind(kafka, records)
        paused = set(kafka.assignment())
        kafka.pause(*paused)
        if error is self._last and self._timer is not None:
            return  # the same failure seen again through a later batch: one wait
        self._last = error
        self._failures += 1
        CONSUMER_WAITS.labels(self._consumer).inc()
        delay = self._retry.delay(self._failures)
        cause = error.error if isinstance(error, Stalled) else error
        log.warning(
            "dependency away; consumer paused",
            consumer=self._consumer,
            error=repr(cause),
            failures=self._failures,
            wait_s=round(delay, 2),
        )
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._resume, kafka, paused)

    def clear(self) -> None:
        """After a success (or at stop): the next failure waits the shortest time."""
        self._failures = 0
        self._last = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _resume(self, kafka: AIOKafkaConsumer, paused: set[TopicPartition]) -> None:
        self._timer = None
        # A rebalance meanwhile may have taken partitions away (or given new ones,
        # which are not paused: they start from their committed offsets).
        try:
            kafka.resume(*(paused & set(kafka.assignment())))
        except (KafkaError, AssertionError) as error:  # stopped meanwhile
            log.info("not resumed", consumer=self._consumer, error=repr(error))


class _NotStoredBefore(Exception):
    """A batch before this one was not stored: this one may not commit either."""
