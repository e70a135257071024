"""Reading topics as they are, for a person: `haunted events tail`.

Like the replay reader, it assigns partitions itself: no consumer group joins, no
offset is committed, so tailing never disturbs a live group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from aiokafka import ConsumerRecord

from events.broker import KafkaSettings, partition_reader, partitions_of
from events.envelope import Envelope, MalformedEvent


@dataclass(frozen=True, slots=True)
class Tailed:
    """One record: its CloudEvent, or why it is not one."""

    topic: str
    partition: int
    offset: int
    envelope: Envelope | None
    error: str | None = None


async def tail(
    kafka: KafkaSettings,
    topics: Sequence[str],
    *,
    types: Sequence[str] = (),
    from_beginning: bool = False,
    last: int = 10,
    follow: bool = False,
) -> AsyncIterator[Tailed]:
    """The records of `topics` whose type is one of `types` (any when empty), per
    partition from the beginning or from the last `last` records; without `follow`,
    up to the end offsets seen at the start."""
    async with partition_reader(kafka, fetch_max_wait_ms=100) as reader:
        partitions = partitions_of(reader, topics)
        if not partitions:
            return
        reader.assign(partitions)
        beginnings = await reader.beginning_offsets(partitions)
        ends = await reader.end_offsets(partitions)
        for partition in partitions:
            start = beginnings[partition]
            if not from_beginning:
                start = max(start, ends[partition] - last)
            reader.seek(partition, start)
        todo = {p for p in partitions if follow or ends[p] > beginnings[p]}
        wanted = set(types)
        while todo:
            fetched = await reader.getmany(*todo, timeout_ms=500)
            for records in fetched.values():
                for record in records:
                    item = _tailed(record)
                    if not wanted or (item.envelope is not None and item.envelope.type in wanted):
                        yield item
            if not follow:
                # Done with a partition at its end offset as seen at the start.
                for partition in list(todo):
                    if await reader.position(partition) >= ends[partition]:
                        todo.discard(partition)


def _tailed(record: ConsumerRecord[bytes, bytes]) -> Tailed:
    try:
        envelope = Envelope.from_record(record.headers, record.value)
    except MalformedEvent as error:
        return Tailed(record.topic, record.partition, record.offset, None, str(error))
    return Tailed(record.topic, record.partition, record.offset, envelope)
