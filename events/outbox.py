"""Transactional outbox: events are rows first, Kafka records second.

A facade adds its events to the same transaction as its rows (`add_event`);
the relay publishes committed rows in batches, pipelining the sends and
awaiting the acks together, and marks rows sent only once the broker has
acked them. A broker outage leaves rows pending; they go out when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    LargeBinary,
    String,
    delete,
    func,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from events.broker import OrderedPublisher, OutgoingRecord
from events.consumer import purge_processed
from events.db import Base, Database
from events.dialect import SqlDialect
from events.envelope import Envelope
from events.metrics import (
    OUTBOX_FAILED,
    OUTBOX_OLDEST_PENDING,
    OUTBOX_PENDING,
    OUTBOX_PUBLISHED,
    PUBLISH_SECONDS,
    RELAY_LEADING,
    RELAY_RESTARTS,
)
from events.tracing import TRACER, current_trace_context, extract, inject
from schemas import Event

log = structlog.get_logger(__name__)

# Any constant works; it names "the outbox relay" among PostgreSQL advisory locks.
_RELAY_LOCK_KEY = 0x4A0715


class OutboxRecord(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        # The relay's query: pending rows in order, without scanning the sent ones.
        Index(
            "ix_outbox_pending",
            "seq",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200))
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column(index=True)
    # The W3C trace context (traceparent, tracestate) current when the event was
    # added: the relay's publish span continues that trace. None: no trace.
    trace_context: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)


def add_event(
    session: AsyncSession,
    event: Event,
    *,
    traceparent: str | None = None,
    event_id: str | None = None,
    time: datetime | None = None,
) -> Envelope:
    """Adds `event` to the caller's transaction; it is published once that commits.
    The current trace context is kept with the row, so the event's consumers join
    the trace of the request (or the consumer) that caused it.

    `event_id`: for an event derived from another one, an id derived from it, so
    that deriving it again (a replay after a restore) yields the same event and
    downstream consumers drop it as a duplicate.

    `time`: when it happened, for an event recorded after the fact (an import); now
    by default."""
    envelope = Envelope.wrap(event, traceparent=traceparent, event_id=event_id, time=time)
    session.add(
        OutboxRecord(
            event_id=envelope.id,
            topic=envelope.type,
            key=envelope.subject,
            headers=envelope.headers(),
            value=envelope.value(),
            created_at=envelope.time,
            trace_context=current_trace_context(),
        )
    )
    session.info["outbox"] = True
    return envelope


def _publish_span(row: Any) -> Span | None:
    """A `publish <topic>` span for a row added under a trace, child of that trace."""
    if not row.trace_context:
        return None
    return TRACER.start_span(
        f"publish {row.topic}",
        context=extract(row.trace_context),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "publish",
            "messaging.destination.name": row.topic,
            "messaging.message.id": row.headers.get("ce_id", ""),
        },
    )


def _headers(row: Any, span: Span | None) -> dict[str, str]:
    """The row's ce_* headers, plus traceparent/tracestate: the publish span's when
    it records, else the stored context as it was (an unsampled trace stays one)."""
    if not row.trace_context:
        return dict(row.headers)
    headers = {**row.headers, **row.trace_context}
    if span is not None and span.is_recording():
        inject(headers, set_span_in_context(span))
    return headers


class LeadershipLost(Exception):
    """The relay's lock (or the connection it lives on) is gone: stop publishing now."""


class LeaseStatementTimedOut(Exception):
    """PostgreSQL cancelled a statement on the lock connection after `statement_timeout`:
    the database is slow, the connection and its lock are fine; the round is retried."""


class OutboxRelay:
    """Publishes committed outbox rows to Kafka, in order, at least once.

    On PostgreSQL the relays of every worker share one outbox and one leads at a
    time, so that each key's events go out in commit order. Leadership is a
    session advisory lock, and it is tied to the connection it was won on: every
    round first checks, on that connection, that it still holds the lock, and
    reads and marks the rows through it. If that connection dies (killed,
    network cut, database restarted) the lock is gone with it, and so is the
    leadership, at once: the relay stops, reconnects and waits its turn again.
    On SQLite there is one process by construction (the file is local), so the
    relay leads without a lock.

    `run()` never ends on an error: whatever breaks (the lock connection, the
    database while waiting) restarts it after a capped backoff.
    """

    def __init__(
        self,
        db: Database,
        producer: OrderedPublisher,
        *,
        batch_size: int = 2000,
        poll_interval_s: float = 0.2,
        retention_s: float = 3600,
        processed_retention_s: float = 14 * 24 * 3600,
        max_backoff_s: float = 5.0,
        backlog_interval_s: float = 5.0,
        lease_timeout_s: float = 30.0,
    ) -> None:
        self._db = db
        # A statement on the lock connection slower than this is cancelled by the
        # server (its statement_timeout), which leaves the connection usable; the
        # client gives up only later, when the server does not answer at all.
        self._lease_timeout_s = lease_timeout_s
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._retention = timedelta(seconds=retention_s)
        self._processed_retention = timedelta(seconds=processed_retention_s)
        self._max_backoff_s = max_backoff_s
        self._backlog_interval_s = backlog_interval_s
        self._backlog_sampled = 0.0
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.leading = False
        self.lease_pid: int | None = None  # the lock connection's backend, while leading
        db.after_commit(self.wake)

    def wake(self) -> None:
        """Called after a commit that wrote events: publish now rather than at the next poll."""
        self._wake.set()

    async def publish_pending(self, lease: AsyncConnection | None = None) -> int:
        """Publishes one batch of pending events; returns how many the broker acked.
        With `lease` (the lock connection), only while it still holds the lock."""
        query = (
            select(
                OutboxRecord.seq,
                OutboxRecord.topic,
                OutboxRecord.key,
                OutboxRecord.headers,
                OutboxRecord.value,
                OutboxRecord.trace_context,
            )
            .where(OutboxRecord.sent_at.is_(None))
            .order_by(OutboxRecord.seq)
            .limit(self._batch_size)
        )
        if lease is not None:
            await self._fence(lease)
            rows = list((await self._on_lease(lease, query)).all())
        else:
            async with self._db.read() as session:
                rows = list((await session.execute(query)).all())
        if not rows:
            return 0
        # One produce batch per partition, all partitions at once: about one round
        # trip per round; a failed batch holds back the rest of its partition.
        spans = [_publish_span(row) for row in rows]
        started = time.perf_counter()
        results = await self._producer.publish_in_order(
            [
                OutgoingRecord(row.topic, row.key.encode(), _headers(row, span), row.value)
                for row, span in zip(rows, spans, strict=True)
            ]
        )
        PUBLISH_SECONDS.observe(time.perf_counter() - started)
        for span, result in zip(spans, results, strict=True):
            if span is not None:
                if result is not None:
                    span.set_status(Status(StatusCode.ERROR, type(result).__name__))
                span.end()
        acked = [row.seq for row, result in zip(rows, results, strict=True) if result is None]
        if acked:
            mark = (
                update(OutboxRecord)
                .where(OutboxRecord.seq.in_(acked))
                .values(sent_at=datetime.now(UTC))
            )
            if lease is not None:
                await self._on_lease(lease, mark)
            else:
                async with self._db.transaction() as session:
                    await session.execute(mark)
            OUTBOX_PUBLISHED.inc(len(acked))
        if len(acked) < len(rows):
            failure = next(r for r in results if r is not None)
            OUTBOX_FAILED.inc()
            raise ConnectionError(f"broker refused {len(rows) - len(acked)} events: {failure!r}")
        return len(acked)

    async def sample_backlog(self) -> None:
        """Sets the backlog gauges: how many rows wait, and how long the oldest has."""
        async with self._db.read() as session:
            pending = await session.scalar(
                select(func.count()).select_from(OutboxRecord).where(OutboxRecord.sent_at.is_(None))
            )
            oldest = await session.scalar(
                select(OutboxRecord.created_at)
                .where(OutboxRecord.sent_at.is_(None))
                .order_by(OutboxRecord.seq)
                .limit(1)
            )
        OUTBOX_PENDING.set(pending or 0)
        age = 0.0 if oldest is None else (datetime.now(UTC) - oldest).total_seconds()
        OUTBOX_OLDEST_PENDING.set(max(0.0, age))

    async def purge_sent(self) -> None:
        """Housekeeping of the bus's tables, by the one relay that leads: sent outbox
        rows past their retention, and consumers' idempotency rows past theirs."""
        now = datetime.now(UTC)
        cutoff = now - self._retention
        async with self._db.transaction() as session:
            await session.execute(
                delete(OutboxRecord).where(
                    OutboxRecord.sent_at.is_not(None), OutboxRecord.sent_at < cutoff
                )
            )
        await purge_processed(self._db, now - self._processed_retention)

    async def run(self) -> None:
        """Runs until `stop()`, restarting after any failure (with a capped backoff)."""
        failures = 0
        while not self._stopping.is_set():
            try:
                if self._db.dialect is SqlDialect.SQLITE:
                    await self._loop(None)
                else:
                    await self._lead()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:
                failures += 1
                RELAY_RESTARTS.inc()
                delay = min(self._max_backoff_s, self._poll_interval_s * 2**failures)
                delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 (not a secret)
                log.warning("outbox relay restarting", error=repr(error), backoff_s=round(delay, 2))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)

    def stop(self) -> None:
        """Asks the loop to finish its round and return. Cancelling it mid-query
        instead can leave a pooled connection half closed."""
        self._stopping.set()
        self._wake.set()

    async def _lead(self) -> None:
        """Waits for the lock on a connection of its own, then publishes through it."""
        async with self._db.engine.connect() as lease:
            await self._on_lease(
                lease,
                text("SELECT set_config('statement_timeout', :ms, false)"),
                {"ms": f"{int(self._lease_timeout_s * 1000)}ms"},
            )
            if not await self._wait_for_leadership(lease):
                return
            self.lease_pid = (await self._on_lease(lease, text("SELECT pg_backend_pid()"))).scalar()
            self._set_leading(True)
            try:
                await self._loop(lease)
            finally:
                self._set_leading(False)
                self.lease_pid = None
                with contextlib.suppress(Exception):  # a dead connection took the lock along
                    await self._on_lease(
                        lease, text("SELECT pg_advisory_unlock(:key)"), {"key": _RELAY_LOCK_KEY}
                    )

    def _set_leading(self, leading: bool) -> None:
        self.leading = leading
        RELAY_LEADING.set(1 if leading else 0)
        log.info("outbox relay leading" if leading else "outbox relay no longer leading")

    async def _wait_for_leadership(self, connection: AsyncConnection) -> bool:
        # The lock dies with its connection: whoever holds it holds a live session.
        while not self._stopping.is_set():
            locked = await self._on_lease(
                connection, text("SELECT pg_try_advisory_lock(:key)"), {"key": _RELAY_LOCK_KEY}
            )
            if locked.scalar():
                return True
            await self._maybe_sample_backlog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_interval_s * 10)
        return False

    async def _fence(self, lease: AsyncConnection) -> None:
        """Proves, on the lock's own connection, that this relay still holds the lock."""
        held = (await self._on_lease(lease, _HOLDS_LOCK, {"key": _RELAY_LOCK_KEY})).scalar()
        if not held:
            raise LeadershipLost("the relay lock is no longer held")

    async def _on_lease(
        self, lease: AsyncConnection, statement: Any, parameters: dict[str, Any] | None = None
    ) -> Any:
        """Runs one statement on the lock connection and commits.

        A statement past `lease_timeout_s` is cancelled by PostgreSQL itself: the
        connection stays usable and keeps its lock, so the transaction is rolled back
        and the round retried, still leading. Any other failure, or no answer at all
        well past that, ends the leadership: the connection cannot be trusted. (A
        client-side timeout alone would cancel the driver mid-operation, and the
        leadership with it, whenever the database is merely slow.)"""
        try:
            async with asyncio.timeout(self._lease_timeout_s + _LEASE_GRACE_S):
                result = await lease.execute(statement, parameters or {})
                await lease.commit()
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == _QUERY_CANCELED:
                try:
                    async with asyncio.timeout(_LEASE_GRACE_S):
                        await lease.rollback()
                except Exception as rollback_error:
                    raise await self._lost(lease, rollback_error) from rollback_error
                raise LeaseStatementTimedOut(repr(error)) from error
            raise await self._lost(lease, error) from error
        except Exception as error:
            raise await self._lost(lease, error) from error
        return result

    @staticmethod
    async def _lost(lease: AsyncConnection, error: BaseException) -> LeadershipLost:
        with contextlib.suppress(Exception):
            await lease.invalidate()
        return LeadershipLost(f"the relay's lock connection failed: {error!r}")

    async def _maybe_sample_backlog(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._backlog_sampled < self._backlog_interval_s:
            return
        self._backlog_sampled = now
        try:
            await self.sample_backlog()
        except Exception as error:  # a metric is never worth stopping the relay for
            log.info("outbox backlog not sampled", error=repr(error))

    async def _loop(self, lease: AsyncConnection | None) -> None:
        backoff = self._poll_interval_s
        rounds = 0
        while not self._stopping.is_set():
            self._wake.clear()
            await self._maybe_sample_backlog()
            try:
                published = await self.publish_pending(lease)
                backoff = self._poll_interval_s
                rounds += 1
                if rounds % 1000 == 0:
                    await self.purge_sent()
            except (asyncio.CancelledError, LeadershipLost):
                raise
            except Exception as error:  # broker or database away: keep the rows, try again
                log.warning("outbox relay retrying", error=str(error), backoff_s=backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            if published == self._batch_size:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)


# A bigint advisory lock shows in pg_locks as classid (high 32 bits), objid (low), objsubid 1.
_HOLDS_LOCK = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND objsubid = 1"
    " AND classid = (CAST(:key AS bigint) >> 32)::oid"
    " AND objid = (CAST(:key AS bigint) & 4294967295)::oid)"
)
# No answer this long after the server's own statement_timeout: the connection is dead.
_LEASE_GRACE_S = 10.0
_QUERY_CANCELED = "57014"  # PostgreSQL's query_canceled (statement_timeout)
