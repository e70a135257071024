"""Transactional outbox: events are rows first, Kafka records second.

A facade adds its events to the same transaction as its rows (`add_event`);
the relay publishes committed rows in batches, pipelining the sends and
awaiting the acks together, and marks rows sent only once the broker has
acked them. A broker outage leaves rows pending; they go out when it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import (
    JSON,
    BigInteger,
    Index,
    Integer,
    LargeBinary,
    String,
    delete,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from events.broker import EventProducer
from events.db import Base, Database
from events.envelope import Envelope
from events.metrics import OUTBOX_FAILED, OUTBOX_PENDING, OUTBOX_PUBLISHED
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


def add_event(
    session: AsyncSession,
    event: Event,
    *,
    traceparent: str | None = None,
    event_id: str | None = None,
) -> Envelope:
    """Adds `event` to the caller's transaction; it is published once that commits.

    `event_id`: for an event derived from another one, an id derived from it, so
    that deriving it again (a replay after a restore) yields the same event and
    downstream consumers drop it as a duplicate."""
    envelope = Envelope.wrap(event, traceparent=traceparent, event_id=event_id)
    session.add(
        OutboxRecord(
            event_id=envelope.id,
            topic=envelope.type,
            key=envelope.subject,
            headers=envelope.headers(),
            value=envelope.value(),
            created_at=envelope.time,
        )
    )
    session.info["outbox"] = True
    return envelope


class OutboxRelay:
    """Publishes committed outbox rows to Kafka, in order, at least once."""

    def __init__(
        self,
        db: Database,
        producer: EventProducer,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.2,
        retention_s: float = 3600,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._db = db
        self._producer = producer
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._retention = timedelta(seconds=retention_s)
        self._max_backoff_s = max_backoff_s
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        db.after_commit(self.wake)

    def wake(self) -> None:
        """Called after a commit that wrote events: publish now rather than at the next poll."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publishes one batch of pending events; returns how many the broker acked."""
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    select(
                        OutboxRecord.seq,
                        OutboxRecord.topic,
                        OutboxRecord.key,
                        OutboxRecord.headers,
                        OutboxRecord.value,
                    )
                    .where(OutboxRecord.sent_at.is_(None))
                    .order_by(OutboxRecord.seq)
                    .limit(self._batch_size)
                )
            ).all()
        OUTBOX_PENDING.set(len(rows))
        if not rows:
            return 0
        # Every send is queued before any ack is awaited: one round trip per batch.
        sends = [
            await self._producer.send(row.topic, row.key.encode(), row.headers, row.value)
            for row in rows
        ]
        results = await asyncio.gather(*sends, return_exceptions=True)
        acked = [
            row.seq
            for row, result in zip(rows, results, strict=True)
            if not isinstance(result, BaseException)
        ]
        if acked:
            async with self._db.transaction() as session:
                await session.execute(
                    update(OutboxRecord)
                    .where(OutboxRecord.seq.in_(acked))
                    .values(sent_at=datetime.now(UTC))
                )
            OUTBOX_PUBLISHED.inc(len(acked))
        if len(acked) < len(rows):
            failure = next(r for r in results if isinstance(r, BaseException))
            OUTBOX_FAILED.inc()
            raise ConnectionError(f"broker refused {len(rows) - len(acked)} events: {failure!r}")
        return len(acked)

    async def purge_sent(self) -> None:
        cutoff = datetime.now(UTC) - self._retention
        async with self._db.transaction() as session:
            await session.execute(
                delete(OutboxRecord).where(
                    OutboxRecord.sent_at.is_not(None), OutboxRecord.sent_at < cutoff
                )
            )

    async def run(self) -> None:
        """Runs until `stop()`. On PostgreSQL one relay at a time publishes (advisory lock)."""
        if self._db.is_sqlite:
            await self._loop()
            return
        async with self._db.engine.connect() as lock_connection:
            if await self._wait_for_leadership(lock_connection):
                await self._loop()
                await lock_connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _RELAY_LOCK_KEY}
                )

    def stop(self) -> None:
        """Asks the loop to finish its round and return. Cancelling it mid-query
        instead can leave a pooled connection half closed."""
        self._stopping.set()
        self._wake.set()

    async def _wait_for_leadership(self, connection: AsyncConnection) -> bool:
        # Relays of N workers share one outbox; one publishing at a time keeps
        # each key's events in commit order. The lock dies with its connection.
        while not self._stopping.is_set():
            locked = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": _RELAY_LOCK_KEY}
            )
            await connection.commit()
            if locked:
                log.info("outbox relay leading")
                return True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_interval_s * 10)
        return False

    async def _loop(self) -> None:
        backoff = self._poll_interval_s
        rounds = 0
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                published = await self.publish_pending()
                backoff = self._poll_interval_s
                rounds += 1
                if rounds % 1000 == 0:
                    await self.purge_sent()
            except asyncio.CancelledError:
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
