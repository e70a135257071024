"""`haunted status`: what runs, and how it is doing (runtime.md: Command line).

Each part is checked on its own, with a bound on the time it may take, so one
part down shows as a row, not as a failed command.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

import httpx
from aiokafka import TopicPartition
from redis.asyncio import Redis
from sqlalchemy import func, select

from events.broker import (
    DLQ_SUFFIX,
    KafkaSettings,
    catalog_topics,
    partition_reader,
    partitions_of,
)
from events.db import Database
from events.outbox import OutboxRecord
from haunted.backup import consumer_positions
from haunted.instance import gateway_url
from haunted.runtime import kafka_settings
from haunted.services import replay_targets
from haunted.settings import MEMORY, Settings

CHECK_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Row:
    part: str
    ok: bool | None  # None: not applicable here (in-process Redis, nothing to say)
    state: str
    detail: str = ""


async def status(settings: Settings) -> list[Row]:
    """One row per dependency, gateway probe, consumer group and dead-letter topic."""
    kafka = kafka_settings(settings)
    database, redis, gateway, broker = await asyncio.gather(
        _bounded("database", _database(settings)),
        _bounded("redis", _redis(settings.redis_url)),
        _bounded("gateway", _gateway(settings)),
        _bounded("broker", _broker(kafka)),
    )
    rows = [*database, *redis, *gateway, *broker]
    if not broker[0].ok:
        rows.append(Row("consumer lag", None, "unknown", "the broker does not answer"))
        return rows
    rows += await _bounded("consumer lag", _lag(kafka))
    return rows


async def _bounded(part: str, check: Awaitable[list[Row]]) -> list[Row]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await check
    except Exception as error:  # a check that fails is a part that is down
        reason = "no answer in time" if isinstance(error, TimeoutError) else repr(error)
        return [Row(part, False, "down", reason)]


async def _database(settings: Settings) -> list[Row]:
    db = Database(settings.database_url)
    try:
        async with db.read() as session:
            pending = await session.scalar(
                select(func.count()).where(OutboxRecord.sent_at.is_(None))
            )
    finally:
        await db.dispose()
    return [
        Row("database", True, "up", db.engine.url.render_as_string(hide_password=True)),
        Row("outbox backlog", True, f"{pending or 0} unsent", "events the relay has yet to send"),
    ]


async def _redis(url: str) -> list[Row]:
    if url == MEMORY:
        return [Row("redis", None, "in-process", "HAUNTED_REDIS_URL unset: each process its own")]
    client: Redis = Redis.from_url(url)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return [Row("redis", True, "up", url.rsplit("@", 1)[-1])]


async def _gateway(settings: Settings) -> list[Row]:
    base = gateway_url(settings)
    rows = []
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        for path in ("/healthz", "/readyz"):
            try:
                response = await client.get(path)
            except httpx.TransportError as error:
                rows.append(Row(f"gateway {path}", False, "down", f"{base}: {error!r}"))
                continue
            ok = response.status_code == 200
            rows.append(
                Row(f"gateway {path}", ok, "up" if ok else str(response.status_code), response.text)
            )
    return rows


async def _broker(kafka: KafkaSettings) -> list[Row]:
    """The broker, and the dead letters kept in each `.dlq` topic."""
    async with partition_reader(kafka) as reader:
        rows = [Row("broker", True, "up", kafka.bootstrap_servers)]
        dlq = [t for t in catalog_topics() if t.endswith(DLQ_SUFFIX)]
        partitions = partitions_of(reader, dlq)
        counts = dict.fromkeys(dlq, 0)
        if partitions:
            beginnings = await reader.beginning_offsets(partitions)
            ends = await reader.end_offsets(partitions)
            for partition in partitions:
                counts[partition.topic] += ends[partition] - beginnings[partition]
        total = sum(counts.values())
        rows.append(Row("dead letters", total == 0, str(total), "`haunted dlq list` shows them"))
        rows += [Row(f"  {topic}", False, str(n)) for topic, n in sorted(counts.items()) if n]
        return rows


async def _lag(kafka: KafkaSettings) -> list[Row]:
    """Per consumer group: the records its topics hold past its committed offsets."""
    targets = [target for target in replay_targets().values() if target.live]
    positions = await consumer_positions(kafka, targets)
    async with partition_reader(kafka) as reader:
        rows = []
        for target in targets:
            at = {
                TopicPartition(topic, int(partition)): offset
                for topic, by_partition in positions[target.consumer].items()
                for partition, offset in by_partition.items()
            }
            ends = await reader.end_offsets(list(at)) if at else {}
            lag = sum(max(0, ends[p] - offset) for p, offset in at.items())
            group = f"group haunted.{target.consumer}"
            rows.append(Row(group, True, f"lag {lag}", "records not yet handled"))
        return rows
