"""Dead letters you can act on: list what failed and why, and feed records back.

`<topic>.dlq` holds each record a consumer gave up on, with the original key,
value and headers plus `dlq_*` headers (error, consumer group, attempts, the
original topic, partition and offset, when). `read` lists them; `redrive` feeds
them back, through the same path as live consumption, to the handler of the
consumer that gave up on each one. That path is idempotent (processed-event
rows, or batch handlers keyed by event id), so a redrive that is repeated, or
that races the live group, applies each event once; a record that fails again
goes back to the dead-letter topic with a new attempt count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from events.broker import DLQ_SUFFIX, KafkaSettings
from events.consumer import BatchHandler, EventConsumers, EventHandler, Outcome, Record


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str  # the dead-letter topic
    partition: int
    offset: int
    headers: dict[str, str]
    record: Record

    @property
    def id(self) -> str:
        """What `redrive --ids` takes: the event id (or partition:offset if it has none)."""
        return self.headers.get("ce_id") or f"{self.partition}:{self.offset}"

    @property
    def consumer(self) -> str:
        return self.headers.get("dlq_consumer", "")

    @property
    def error(self) -> str:
        return self.headers.get("dlq_error", "")

    @property
    def time(self) -> str:
        return self.headers.get("dlq_time", "")

    @property
    def origin(self) -> str:
        topic = self.headers.get("dlq_topic", self.topic.removesuffix(DLQ_SUFFIX))
        partition = self.headers.get("dlq_partition", "?")
        return f"{topic}[{partition}]@{self.headers.get('dlq_offset', '?')}"

    @property
    def attempts(self) -> str:
        return self.headers.get("dlq_attempts", "")


async def read(
    kafka: KafkaSettings, topics: Sequence[str], since: datetime | None = None
) -> list[DeadLetter]:
    """Every dead letter now in `topics` (dead-letter topic names), oldest first per partition."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        request_timeout_ms=kafka.request_timeout_ms,
        fetch_max_wait_ms=100,
    )
    try:
        await reader.start()
    except BaseException:
        await reader.stop()  # a broker that does not answer: no consumer left unclosed
        raise
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(reader.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return []
        reader.assign(partitions)
        ends = await reader.end_offsets(partitions)
        if since is None:
            starts = await reader.beginning_offsets(partitions)
        else:
            found = await reader.offsets_for_times(
                {p: int(since.timestamp() * 1000) for p in partitions}
            )
            starts = {p: found[p].offset if found.get(p) else ends[p] for p in partitions}
        letters: list[DeadLetter] = []
        todo = {p for p in partitions if starts[p] < ends[p]}
        for partition in partitions:
            reader.seek(partition, starts[partition])
        since_ms = int(since.timestamp() * 1000) if since is not None else -1
        idle = 0
        while todo and idle < 20:  # ends may be understated (Tansu): stop when drained
            fetched = await reader.getmany(*todo, timeout_ms=200)
            idle = 0 if fetched else idle + 1
            for partition, records in fetched.items():
                for record in records:
                    if record.timestamp < since_ms:
                        continue  # offsets_for_times is a start, not a filter (Tansu)
                    letters.append(
                        DeadLetter(
                            partition.topic,
                            partition.partition,
                            record.offset,
                            {n: (v or b"").decode(errors="replace") for n, v in record.headers},
                            record,
                        )
                    )
            for partition in list(todo):
                if partition not in fetched and await reader.position(partition) >= ends[partition]:
                    todo.discard(partition)
        return letters
    finally:
        await reader.stop()


@dataclass
class RedriveReport:
    handled: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    dead_lettered_again: list[str] = field(default_factory=list)
    # id -> why it was not fed (no such consumer here, dry run)
    skipped: dict[str, str] = field(default_factory=dict)


async def redrive(
    letters: Sequence[DeadLetter],
    consumers: EventConsumers,
    handlers: Mapping[str, EventHandler | BatchHandler],
    batch: frozenset[str],
    *,
    dry_run: bool = False,
) -> RedriveReport:
    """Feeds each dead letter to its consumer's handler (`handlers` by consumer name;
    those in `batch` take batches) through the live path; waits out outages."""
    report = RedriveReport()
    for letter in letters:
        consumer = letter.consumer
        handler = handlers.get(consumer)
        if handler is None:
            report.skipped[letter.id] = f"no consumer {consumer!r} in this process"
            continue
        if dry_run:
            report.skipped[letter.id] = f"dry run: would go to {consumer}"
            continue
        record = _original(letter)
        if consumer in batch:
            outcome = await _redrive_batch(consumers, consumer, record, handler)  # type: ignore[arg-type]
        else:
            outcome = await _redrive_one(consumers, consumer, record, handler)  # type: ignore[arg-type]
        {
            Outcome.HANDLED: report.handled,
            Outcome.DUPLICATE: report.duplicates,
            Outcome.DEAD_LETTERED: report.dead_lettered_again,
        }[outcome].append(letter.id)
    return report


async def _redrive_one(
    consumers: EventConsumers, consumer: str, record: Record, handler: EventHandler
) -> Outcome:
    outcome: Outcome = await consumers.until_stored(
        consumer, lambda: consumers.handle_record(consumer, record, handler)
    )
    return outcome


async def _redrive_batch(
    consumers: EventConsumers, consumer: str, record: Record, handler: BatchHandler
) -> Outcome:
    decoded, outcomes = await consumers.until_stored(
        consumer, lambda: consumers.decode_batch(consumer, [record])
    )
    if outcomes:
        return outcomes[0]
    written: list[Outcome] = await consumers.until_stored(
        consumer, lambda: consumers.write_batch(consumer, decoded, handler)
    )
    return written[0]


def _original(letter: DeadLetter) -> Record:
    """The record as it was first published: the original topic and position, and its
    headers without the dead-letter ones (a new failure records fresh ones)."""
    headers = [(n, v) for n, v in letter.record.headers if not n.startswith("dlq_")]
    topic = letter.headers.get("dlq_topic", letter.topic.removesuffix(DLQ_SUFFIX))
    return ConsumerRecord(
        topic=topic,
        partition=int(letter.headers.get("dlq_partition", letter.partition)),
        offset=int(letter.headers.get("dlq_offset", letter.offset)),
        timestamp=letter.record.timestamp,
        timestamp_type=letter.record.timestamp_type,
        key=letter.record.key,
        value=letter.record.value,
        checksum=None,
        serialized_key_size=letter.record.serialized_key_size,
        serialized_value_size=letter.record.serialized_value_size,
        headers=headers,
    )


__all__ = ["DeadLetter", "RedriveReport", "read", "redrive"]
