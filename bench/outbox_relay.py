"""Outbox relay throughput vs raw aiokafka, on the same broker in the same run.

1. commit: N `user.logged_in` events go into the outbox with `add_event`,
   `--batch` per transaction (the facades' side of the cost, timed apart);
2. raw: an AIOKafkaProducer sends N records of the same topic, key, headers
   and value, pipelined: `send()` futures gathered per `--batch`;
3. relay: `OutboxRelay.publish_pending` in a loop until the outbox is drained
   (read a batch, send it pipelined, await the acks, mark the rows sent).

Both producers get one untimed warm-up batch first (connections, metadata).
Raw and relay then take turns in rounds (alternating who goes first), so that
what else the machine does slows both alike; each figure is the sum of its rounds.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import pstats
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from bench.common import Backend, embedded_broker, heading, line, quiet_logs, stores
from bench.summary import goal
from events.broker import KafkaSettings, RelayProducer, ensure_topics
from events.db import Database
from events.envelope import Envelope
from events.outbox import OutboxRecord, OutboxRelay, add_event
from schemas import UserLoggedIn

TOPIC = UserLoggedIn.topic
GOAL = 0.5
ROUNDS = 8

RawRecord = tuple[bytes, list[tuple[str, bytes]], bytes]


@dataclass(frozen=True, slots=True)
class OutboxRelayResult:
    backend: Backend
    events: int
    commit_s: float
    raw_s: float
    relay_s: float

    @property
    def commit_rate(self) -> float:
        return self.events / self.commit_s

    @property
    def raw_rate(self) -> float:
        return self.events / self.raw_s

    @property
    def relay_rate(self) -> float:
        return self.events / self.relay_s

    @property
    def ratio(self) -> float:
        return self.relay_rate / self.raw_rate


def _rounds(events: int) -> list[tuple[int, int]]:
    """[start, stop) of each round; the last takes the remainder."""
    size = max(1, events // ROUNDS)
    bounds = [(start, min(start + size, events)) for start in range(0, events, size)]
    if len(bounds) > ROUNDS:  # fold a short tail into the last full round
        bounds[-2:] = [(bounds[-2][0], events)]
    return bounds


def _event() -> UserLoggedIn:
    return UserLoggedIn(user_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()))


def _raw_record() -> RawRecord:
    envelope = Envelope.wrap(_event())
    headers = [(name, value.encode()) for name, value in envelope.headers().items()]
    return envelope.key, headers, envelope.value()


async def _commit(db: Database, events: int, batch: int) -> None:
    for start in range(0, events, batch):
        async with db.transaction() as session:
            for _ in range(min(batch, events - start)):
                add_event(session, _event())


async def _drain(relay: OutboxRelay, at_least: int | None = None) -> int:
    """Publishes until `at_least` events went out, or, without it, until none is left."""
    published = 0
    while at_least is None or published < at_least:
        sent = await relay.publish_pending()
        if not sent:
            break
        published += sent
    return published


async def _send_raw(producer: AIOKafkaProducer, records: list[RawRecord], batch: int) -> None:
    for start in range(0, len(records), batch):
        futures = [
            await producer.send(TOPIC, value, key=key, headers=headers)
            for key, headers, value in records[start : start + batch]
        ]
        await asyncio.gather(*futures)


@contextlib.contextmanager
def _profiling(profiler: cProfile.Profile | None) -> Iterator[None]:
    if profiler is not None:
        profiler.enable()
    try:
        yield
    finally:
        if profiler is not None:
            profiler.disable()


async def _pending(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxRecord).where(OutboxRecord.sent_at.is_(None))
        )
    return int(count or 0)


async def run(
    backend: Backend, events: int, *, batch: int = 2000, profile: bool = False
) -> OutboxRelayResult:
    with tempfile.TemporaryDirectory(prefix="haunted-bench-") as directory:
        async with stores(backend, Path(directory)) as found, embedded_broker() as tansu:
            kafka = KafkaSettings(tansu.bootstrap_servers)
            await ensure_topics(kafka, [TOPIC])
            db = Database(found.database_url)
            sender = RelayProducer(kafka)
            relay = OutboxRelay(db, sender, batch_size=batch)
            # The same producer settings as the Bus's.
            raw = AIOKafkaProducer(
                bootstrap_servers=tansu.bootstrap_servers,
                linger_ms=5,
                acks="all",
                request_timeout_ms=kafka.request_timeout_ms,
            )
            await raw.start()
            try:
                await _commit(db, batch, batch)
                await _drain(relay)
                await _send_raw(raw, [_raw_record() for _ in range(batch)], batch)

                started = time.perf_counter()
                await _commit(db, events, batch)
                commit_s = time.perf_counter() - started
                profiler = cProfile.Profile() if profile else None

                records = [_raw_record() for _ in range(events)]
                seconds = {"raw": 0.0, "relay": 0.0}
                published = 0
                for turn, (start, stop) in enumerate(_rounds(events)):
                    for side in ("relay", "raw") if turn % 2 else ("raw", "relay"):
                        began = time.perf_counter()
                        if side == "raw":
                            await _send_raw(raw, records[start:stop], batch)
                        else:
                            with _profiling(profiler):
                                last = stop == events
                                published += await _drain(relay, None if last else stop - start)
                        seconds[side] += time.perf_counter() - began

                left = await _pending(db)
                if published != events or left:
                    raise RuntimeError(f"relay published {published} of {events}; {left} pending")
            finally:
                await raw.stop()
                await sender.stop()
                await db.dispose()
    result = OutboxRelayResult(backend, events, commit_s, seconds["raw"], seconds["relay"])
    _print(result, batch)
    goal(
        f"outbox relay [{backend}]",
        f"{result.relay_rate:,.0f} ev/s vs raw aiokafka {result.raw_rate:,.0f}/s",
        result.ratio,
        GOAL,
    )
    if profiler is not None:
        _print_profile(profiler)
    return result


def _print(result: OutboxRelayResult, batch: int) -> None:
    heading(
        f"outbox relay throughput [{result.backend}] "
        f"({result.events:,} events, batch {batch}, {ROUNDS} interleaved rounds)"
    )
    line("commit into the outbox (facades)", f"{result.commit_rate:>10,.0f} events/s")
    line("raw aiokafka (baseline)", f"{result.raw_rate:>10,.0f} events/s")
    line("outbox relay", f"{result.relay_rate:>10,.0f} events/s")
    verdict = "meets" if result.ratio >= GOAL else "below"
    line("ratio relay/raw", f"{result.ratio:>10.2f}   ({verdict} the goal of {GOAL})")


def _print_profile(profiler: cProfile.Profile) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(25)
    heading("relay profile (cProfile, by own time)")
    print(out.getvalue())


def main(backend: Backend, events: int, batch: int, profile: bool) -> OutboxRelayResult:
    quiet_logs()
    return asyncio.run(run(backend, events, batch=batch, profile=profile))
