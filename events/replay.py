"""Replay: feed a service's handler from retained topics, to backfill or rebuild its state.

The reader assigns partitions itself (no consumer group, nothing committed), so
a replay never disturbs the live group. It starts at the beginning or at the
offsets for a time (offsets_for_times), and stops at the end offsets captured
when it starts. Records go through the service's own handling path
(`EventConsumers.handle_record`, or `decode_batch` then `write_batch`), so
idempotency holds (replaying twice is replaying once) and poison records go to
the DLQ.

With `rebuild`, the service's state and its processed-event rows are emptied
first; end offsets are captured after that, so every event the live consumer
had applied before the wipe is replayed. Past the end offsets, a replay reads
on until its partition is drained or a record appended after it started
comes: brokers may understate end offsets, and reading further is harmless
since handlers are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from events.broker import KafkaSettings
from events.consumer import BatchHandler, EventConsumers, EventHandler, Outcome, ProcessedEvent
from events.db import Database

log = structlog.get_logger(__name__)

CLOCK_MARGIN_MS = 5_000
Progress = Callable[[int, int], None]  # (records done, records to do)
Rebuild = Callable[[AsyncSession], Awaitable[None]]


async def rebuild_in_place(session: AsyncSession) -> None:
    """A rebuild that empties nothing: for read models that live consumers look up
    (memberships, plans) and whose every change carries its event time, the
    latest winning. Replaying over the live rows converges on a fresh build, and
    live readers never see the model empty meanwhile."""


@dataclass(frozen=True, slots=True)
class ReplayTarget:
    """What a service consumes, and how: one record at a time or in batches."""

    consumer: str
    topics: tuple[str, ...]
    handler: EventHandler | None = None
    batch_handler: BatchHandler | None = None
    rebuild: Rebuild | None = None  # empties the service's state before a rebuild
    # A live consumer group's target, re-fed after a restore; False for a view that
    # replays part of another target's topics (that target covers it).
    live: bool = True

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.batch_handler is None):
            raise ValueError("a replay target takes exactly one of handler and batch_handler")


@dataclass(frozen=True, slots=True)
class ReplayReport:
    records: int  # fed to the handler
    handled: int
    dead_lettered: int
    duplicates: int


class ReplayError(Exception):
    """A replay that cannot run as asked (unknown topic, no rebuild for the service)."""


class ReplayIncomplete(ReplayError):
    """The replay stopped before the end offsets it captured at its start."""


async def replay(
    target: ReplayTarget,
    consumers: EventConsumers,
    db: Database,
    kafka: KafkaSettings,
    *,
    topics: Sequence[str] | None = None,
    since: datetime | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    batch_size: int = 10_000,
    idle_timeout_s: float = 5.0,
    start: Mapping[TopicPartition, int] | None = None,
) -> ReplayReport:
    """`start`: offsets to start from per partition (a backup's consumer positions);
    a partition it does not name starts at its beginning. Refused (ReplayError) when
    the topic's retention has dropped records after such an offset."""
    if start is not None and (since is not None or rebuild):
        raise ReplayError("give start offsets, a time or a rebuild, not two of them")
    chosen = tuple(topics) if topics else target.topics
    unknown = [topic for topic in chosen if topic not in target.topics]
    if unknown:
        raise ReplayError(f"{target.consumer} does not consume {', '.join(unknown)}")
    if rebuild:
        if target.rebuild is None:
            raise ReplayError(f"{target.consumer} has no state to rebuild")
        if since is not None or topics:
            raise ReplayError("a rebuild replays every topic from the beginning")
        async with db.transaction() as session:
            await target.rebuild(session)
            await session.execute(
                delete(ProcessedEvent).where(ProcessedEvent.consumer == target.consumer)
            )

    reader = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        request_timeout_ms=kafka.request_timeout_ms,
        max_poll_records=batch_size,
        fetch_max_wait_ms=100,
    )
    await reader.start()
    feeder = _Feeder(target, consumers)
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in chosen
            for partition in sorted(reader.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            if progress:
                progress(0, 0)
            return ReplayReport(0, 0, 0, 0)
        reader.assign(partitions)
        ends = await reader.end_offsets(partitions)
        if start is not None:
            beginnings = await reader.beginning_offsets(partitions)
            gaps = retention_gaps(target.consumer, start, beginnings)
            if gaps:
                raise ReplayError("; ".join(gaps))
            starts = {p: start.get(p, beginnings[p]) for p in partitions}
        else:
            starts = await _start_offsets(reader, partitions, since, ends)
        todo = set(partitions)
        total = sum(max(0, ends[p] - starts[p]) for p in partitions)
        for partition in partitions:
            reader.seek(partition, starts[partition])
        done = 0
        outcomes: list[Outcome] = []
        since_ms = int(since.timestamp() * 1000) if since is not None else -1
        # Records appended after this (with a margin for producers' clocks) are the
        # live consumer's: past the end offsets, the replay stops at the first one.
        cutoff_ms = int(time.time() * 1000) + CLOCK_MARGIN_MS
        if progress:
            progress(0, total)
        loop = asyncio.get_running_loop()
        last_record = loop.time()
        while todo:
            fetched = await reader.getmany(*todo, timeout_ms=200, max_records=batch_size)
            for partition in list(todo):
                # Drained: nothing more right now, and at least at the captured end.
                # (Some brokers, Tansu among them, understate end offsets after
                # multi-record batches, so the end alone is not where to stop.)
                if partition not in fetched and await reader.position(partition) >= ends[partition]:
                    todo.discard(partition)
            if not fetched:
                if todo and loop.time() - last_record > idle_timeout_s:
                    short = {
                        str(p): ends[p] - await reader.position(p)
                        for p in todo
                        if await reader.position(p) < ends[p]
                    }
                    if short:
                        # Say so (the command exits non-zero): a partial rebuild is not one.
                        raise ReplayIncomplete(
                            f"replay stopped {idle_timeout_s:.0f} s without records, short of"
                            f" the end offsets it captured: {short}"
                        )
                    break
                continue
            last_record = loop.time()
            batch: list[ConsumerRecord[bytes, bytes]] = []
            for partition, records in fetched.items():
                for record in records:
                    if record.offset >= ends[partition] and record.timestamp > cutoff_ms:
                        todo.discard(partition)
                        break
                    # offsets_for_times is a start, not a filter (some brokers answer
                    # it loosely): records older than `since` are skipped here.
                    if record.timestamp >= since_ms:
                        batch.append(record)
                    else:
                        done += 1
            if batch:
                # One handler call for the whole fetch: fewer, larger transactions.
                fed = await feeder.feed(batch)
                outcomes += fed
                done += len(fed)
            if progress:
                progress(done, max(total, done))
        outcomes += await feeder.finish()
        if progress:
            progress(len(outcomes), max(total, len(outcomes)))
        return ReplayReport(
            len(outcomes),
            outcomes.count(Outcome.HANDLED),
            outcomes.count(Outcome.DEAD_LETTERED),
            outcomes.count(Outcome.DUPLICATE),
        )
    finally:
        await feeder.abandon()
        await reader.stop()


def retention_gaps(
    consumer: str,
    start: Mapping[TopicPartition, int],
    beginnings: Mapping[TopicPartition, int],
) -> list[str]:
    """Where the topics no longer hold what a replay from `start` needs: one line each."""
    gaps = []
    for partition, offset in sorted(start.items()):
        first = beginnings.get(partition)
        if first is not None and first > offset:
            gaps.append(
                f"{consumer} needs {partition.topic}[{partition.partition}] from offset {offset}, "
                f"but the topic's retention now starts at {first} ({first - offset} records gone)"
            )
    return gaps


async def _start_offsets(
    reader: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    since: datetime | None,
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    if since is None:
        return dict(await reader.beginning_offsets(partitions))
    found = await reader.offsets_for_times({p: int(since.timestamp() * 1000) for p in partitions})
    # No record at or after `since` in a partition: nothing to replay there.
    return {p: found[p].offset if found.get(p) is not None else ends[p] for p in partitions}


class _Feeder:
    """Feeds the service's handler. A batch handler's batches are written while
    the next are fetched and decoded, up to `in_flight` at once as in the live
    group; `feed` returns the outcomes of what has been stored since its last call."""

    def __init__(self, target: ReplayTarget, consumers: EventConsumers, in_flight: int = 2) -> None:
        self._target = target
        self._consumers = consumers
        self._in_flight = in_flight
        self._writing: deque[asyncio.Task[list[Outcome]]] = deque()

    async def feed(self, records: list[ConsumerRecord[bytes, bytes]]) -> list[Outcome]:
        target, consumers = self._target, self._consumers
        # An outage (database, broker) is waited out, as the live group does.
        if target.batch_handler is None:
            handler = target.handler
            assert handler is not None
            return [
                await consumers.until_stored(
                    target.consumer,
                    lambda record=record: consumers.handle_record(target.consumer, record, handler),  # type: ignore[misc]
                )
                for record in records
            ]
        batch_handler = target.batch_handler
        decoded, outcomes = await consumers.until_stored(
            target.consumer, lambda: consumers.decode_batch(target.consumer, records)
        )
        while self._writing and (len(self._writing) >= self._in_flight or self._writing[0].done()):
            outcomes += await self._writing.popleft()
        self._writing.append(
            asyncio.create_task(
                consumers.until_stored(
                    target.consumer,
                    lambda: consumers.write_batch(target.consumer, decoded, batch_handler),
                )
            )
        )
        return outcomes

    async def finish(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        while self._writing:
            outcomes += await self._writing.popleft()
        return outcomes

    async def abandon(self) -> None:
        """Stops the writes still in flight when the replay fails: they roll back."""
        while self._writing:
            writing = self._writing.popleft()
            writing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writing
