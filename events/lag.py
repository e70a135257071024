"""Consumer lag per group and partition: how far each consumer group is behind the log.

Lag is the partition's end offset (the consumer's last fetched high-water mark,
or the broker's answer before the first fetch) minus the group's committed
offset (its position when nothing is committed yet). Sampled every few seconds
for the partitions this process's consumers own, so N workers of a group
together export every partition once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import structlog
from aiokafka.errors import KafkaError
from prometheus_client import Gauge

log = structlog.get_logger(__name__)

CONSUMER_LAG = Gauge(
    "haunted_consumer_lag_records",
    "Records in the partition not yet committed by the group",
    ["group", "topic", "partition"],
)


async def record_lag(groups: Iterable[tuple[str, Any]]) -> None:
    """One sample for every (group, subscriber) whose consumer has partitions."""
    for group, subscriber in groups:
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None:
            continue
        assigned = list(consumer.assignment())
        if not assigned:
            continue
        try:
            ends = await consumer.end_offsets(assigned)
            for partition in assigned:
                end = consumer.highwater(partition)
                end = ends[partition] if end is None else max(end, ends[partition])
                committed = await consumer.committed(partition)
                if committed is None:
                    committed = await consumer.position(partition)
                CONSUMER_LAG.labels(group, partition.topic, str(partition.partition)).set(
                    max(0, end - committed)
                )
        except (KafkaError, AssertionError, ValueError) as error:  # rebalancing or stopping
            log.info("consumer lag not sampled", group=group, error=repr(error))


async def sample_lag(
    groups: Iterable[tuple[str, Any]], stopping: asyncio.Event, interval_s: float = 5.0
) -> None:
    """`record_lag` every `interval_s` until `stopping` is set."""
    groups = list(groups)
    while not stopping.is_set():
        try:
            await record_lag(groups)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # a metric must never stop the process's work
            log.warning("consumer lag sampling failed", error=repr(error))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_s)
