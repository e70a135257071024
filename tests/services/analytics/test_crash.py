"""A `haunted worker analytics` killed mid-batch loses nothing and counts nothing twice.

The topic is filled first, then a real worker process ingests it and is killed
with SIGKILL (no shutdown, no offset commit, no group leave) once one batch is
stored and while the next one's transaction is open. A second worker resumes
from the group's committed offsets: the killed batch comes again, and so would
a batch stored before its offsets were committed; the event id absorbs what is
already there, as it absorbs records that were sent twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import asyncpg
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from sqlalchemy.engine import make_url

import haunted
from events.broker import ensure_topics
from events.envelope import Envelope
from haunted.runtime import kafka_settings
from haunted.settings import Settings
from schemas import AnalyticsTracked
from tests.conftest import eventually

HAUNTED = Path(sys.executable).with_name("haunted")  # the console script of this venv
ROOT = Path(haunted.__file__).resolve().parent.parent
TOPIC = AnalyticsTracked.topic
GROUP = "haunted.analytics"

# Several fetched batches' worth (a fetch is about 10,000 of these records), so
# that when one batch is stored and the next is being written, most are not.
EVENTS = 40_000
NAMES = ("page.viewed", "signup.started", "signup.done", "invite.sent", "plan.upgraded")

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # value, key, headers


# -- the topic -------------------------------------------------------------------------


@dataclass
class Sent:
    """What went to the topic, and what the store must end up with."""

    names: dict[str, str] = field(default_factory=dict)  # event id -> tracked name
    records: int = 0
    # partition -> the offset after its last record, as the broker acknowledged it
    ends: dict[int, int] = field(default_factory=dict)


def tracked(index: int) -> tuple[str, str, Record]:
    # Uneven counts per name, so a name counted twice or missed shows.
    name = NAMES[min(index % 9, len(NAMES) - 1)]
    envelope = Envelope.wrap(
        AnalyticsTracked(
            name=name, user_id=f"u{index % 997}", team_id=f"t{index % 13}", properties={"n": index}
        )
    )
    headers = [(k, v.encode()) for k, v in envelope.headers().items()]
    return envelope.id, name, (envelope.value(), envelope.key, headers)


async def prefill(bootstrap: str, count: int) -> Sent:
    """`count` distinct tracked events; about 1% of them are sent a second time (the
    same record, so the same CloudEvent id and partition): some a few hundred
    records after the first copy, some at the end of the topic."""
    sent = Sent()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[object]] = []

        async def flush() -> None:
            # The acknowledged offsets, not the broker's end offsets: Tansu's
            # ListOffsets answer falls short of them on this topic.
            for metadata in await asyncio.gather(*pending):
                partition, offset = metadata.partition, metadata.offset  # type: ignore[attr-defined]
                sent.ends[partition] = max(sent.ends.get(partition, 0), offset + 1)
            pending.clear()

        async def send(record: Record) -> None:
            value, key, headers = record
            pending.append(await producer.send(TOPIC, value, key=key, headers=headers))
            sent.records += 1
            if len(pending) >= 5_000:
                await flush()

        records: list[Record] = []
        for index in range(count):
            event_id, name, record = tracked(index)
            sent.names[event_id] = name
            records.append(record)
            await send(record)
            if index >= 400 and index % 211 == 0:
                await send(records[index - 400])
        for record in records[::1_500]:
            await send(record)
        await flush()
    finally:
        await producer.stop()
    assert len(sent.names) == count and sent.records > count
    return sent


async def committed(bootstrap: str, partitions: Iterable[int]) -> dict[int, int]:
    """The analytics group's committed offset on these partitions of the topic (-1: none).

    The partitions are named: Tansu's answer to "every partition of the group"
    is one aiokafka cannot decode."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    try:
        async with asyncio.timeout(5):  # no answer in time: {}, and the caller polls again
            await admin.start()
            offsets = await admin.list_consumer_group_offsets(
                GROUP, partitions=[TopicPartition(TOPIC, p) for p in partitions]
            )
    except TimeoutError:
        return {}
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


# -- the store, seen from outside the worker -----------------------------------------


class Store(Protocol):
    async def stored(self) -> int: ...

    async def writing(self) -> bool:
        """Whether the worker has a transaction open on analytics_events."""
        ...

    async def rows(self) -> list[tuple[str, str]]:
        """(id, type) of every stored event."""
        ...

    async def close(self) -> None: ...


class SqliteStore:
    """Plain sqlite3 connections: events.db.Database opens every transaction with
    BEGIN IMMEDIATE, so polling through it would take the worker's write lock."""

    def __init__(self, path: str) -> None:
        self._reader = sqlite3.connect(path, timeout=10, isolation_level=None)
        self._prober = sqlite3.connect(path, timeout=0, isolation_level=None)

    async def stored(self) -> int:
        with closing(self._reader.execute("SELECT count(*) FROM analytics_events")) as cursor:
            return int(cursor.fetchone()[0])

    async def writing(self) -> bool:
        # SQLite's one write lock: a batch holds it for its whole transaction (a
        # hundred milliseconds or more here), the outbox relay's poll for about
        # one. Held on two probes 10 ms apart, it is a batch being written.
        if not self._locked():
            return False
        await asyncio.sleep(0.01)
        return self._locked()

    def _locked(self) -> bool:
        try:
            self._prober.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            return True
        self._prober.execute("ROLLBACK")
        return False

    async def rows(self) -> list[tuple[str, str]]:
        with closing(self._reader.execute("SELECT id, type FROM analytics_events")) as cursor:
            return [(str(id_), str(type_)) for id_, type_ in cursor.fetchall()]

    async def close(self) -> None:
        self._reader.close()
        self._prober.close()


class PostgresStore:
    WRITING = """
        SELECT count(*) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND xact_start IS NOT NULL AND query ILIKE '%analytics_events%'"""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection

    async def stored(self) -> int:
        return int(await self._connection.fetchval("SELECT count(*) FROM analytics_events"))

    async def writing(self) -> bool:
        return bool(await self._connection.fetchval(self.WRITING))

    async def rows(self) -> list[tuple[str, str]]:
        records = await self._connection.fetch("SELECT id, type FROM analytics_events")
        return [(record["id"], record["type"]) for record in records]

    async def close(self) -> None:
        await self._connection.close()


@asynccontextmanager
async def store(database_url: str) -> AsyncIterator[Store]:
    url = make_url(database_url)
    opened: Store
    if url.get_backend_name() == "sqlite":
        assert url.database
        opened = SqliteStore(url.database)
    else:
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        opened = PostgresStore(await asyncpg.connect(dsn))
    try:
        yield opened
    finally:
        await opened.close()


# -- the worker ------------------------------------------------------------------------


def settings_env(settings: Settings, home: Path) -> dict[str, str]:
    """The environment that gives a `haunted` child process these settings: each
    field set explicitly becomes its HAUNTED_* variable, and nothing else leaks in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
    }
    for name in settings.flat_fields_set:  # a section's fields by their own variables
        value = settings.flat_value(name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | dict):
            text = json.dumps(value, default=str)
        else:
            text = str(value)
        env[f"HAUNTED_{name.upper()}"] = text
    return env


@dataclass
class Worker:
    process: asyncio.subprocess.Process
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5_000:]

    def send(self, number: signal.Signals) -> None:
        """To the worker's own process group: anything it started goes with it."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, number)


@asynccontextmanager
async def worker(env: dict[str, str], cwd: Path, name: str) -> AsyncIterator[Worker]:
    """`haunted worker analytics` in its own process group; killed if still running."""
    log = cwd / f"{name}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            str(HAUNTED),
            "worker",
            "analytics",
            env=env,
            cwd=cwd,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    running = Worker(process, log)
    try:
        yield running
    finally:
        if process.returncode is None:
            running.send(signal.SIGKILL)
            await process.wait()


# -- the test --------------------------------------------------------------------------


async def test_a_worker_killed_mid_batch_loses_nothing_and_counts_nothing_twice(
    settings: Settings, tmp_path: Path
) -> None:
    kafka = kafka_settings(settings)
    await ensure_topics(kafka)  # the catalog's partitions, as the worker would create them
    sent = await prefill(kafka.bootstrap_servers, EVENTS)
    env = settings_env(settings, tmp_path)
    async with store(settings.database_url) as events:
        async with worker(env, tmp_path, "first") as first:
            # Killed with a batch stored (offsets committed or not) and the next
            # one's transaction open: neither shutdown nor commit runs.
            deadline = asyncio.get_running_loop().time() + 60
            while True:
                assert first.process.returncode is None, first.output()
                count = await events.stored()
                assert count < EVENTS, "all stored before a batch was seen being written"
                if count > 0 and await events.writing():
                    break
                assert asyncio.get_running_loop().time() < deadline, (count, first.output())
                await asyncio.sleep(0.002)
            first.send(signal.SIGKILL)
            status = await asyncio.wait_for(first.process.wait(), 10)
        assert status == -signal.SIGKILL, first.output()
        at_kill = await events.stored()
        # Mid-way: some stored, not all (a kill after the end would prove nothing).
        assert 0 < at_kill < EVENTS, at_kill

        async with worker(env, tmp_path, "second") as second:

            async def caught_up() -> bool:
                assert second.process.returncode is None, second.output()
                offsets = await committed(kafka.bootstrap_servers, sent.ends)
                count = await events.stored()
                if offsets != sent.ends:
                    return False
                # Every record consumed, the trailing copies too; and a batch's offsets
                # are committed only once it is stored, so every event must be there.
                assert count == EVENTS, f"all offsets committed, {EVENTS - count} events missing"
                return True

            await eventually(caught_up, timeout_s=60, interval_s=0.1)
            second.send(signal.SIGTERM)
            status = await asyncio.wait_for(second.process.wait(), 30)
        assert status == 0, second.output()
        rows = await events.rows()

    # The primary key makes a row per event id at most: what can go wrong is a
    # missing event (checked here) or a count taken twice (the per-name counts).
    assert len(rows) == len(sent.names) == EVENTS
    assert {event_id for event_id, _ in rows} == set(sent.names)
    assert Counter(name for _, name in rows) == Counter(sent.names.values())
