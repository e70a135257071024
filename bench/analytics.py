"""Analytics ingest and replay against a raw consumer baseline, in one run.

    python -m bench.analytics [--events N] [--backend real|embedded]

A topic is pre-filled with N `analytics.tracked` events. The baseline is a raw
aiokafka consumer reading them without storing anything. Then:
- live ingest: the analytics consumer group (the bus's batch subscriber, one
  transaction per fetched batch, written while the next is fetched) from offset
  0 until the group has committed all N; printed over the whole run and from
  its first stored batch on (the group join before it is a fixed cost, about
  3 s on the embedded broker);
- replay --rebuild: the store emptied and rebuilt by `events.replay.replay`
  through the same batch handler.
The process tunes its garbage collector as `haunted` processes do.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import func, select

from bench.common import BACKENDS, Backend, embedded_broker, heading, line, quiet_logs, stores
from bench.summary import goal
from events.broker import Bus, KafkaProducer, KafkaSettings, ensure_topics
from events.consumer import DECODE_SLICE, EventConsumers
from events.db import Database
from events.envelope import Envelope
from events.replay import replay
from haunted.runtime import tune_gc
from haunted.services import replay_targets
from schemas import AnalyticsTracked
from services import analytics
from services.analytics.handlers import _row as analytics_row
from services.analytics.models import AnalyticsEvent

TOPIC = AnalyticsTracked.topic


async def prefill(bootstrap: str, count: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    try:
        pending = []
        for index in range(count):
            envelope = _tracked(index)
            headers = [(k, v.encode()) for k, v in envelope.headers().items()]
            pending.append(
                await producer.send(TOPIC, envelope.value(), key=envelope.key, headers=headers)
            )
            if len(pending) >= 5_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _tracked(index: int) -> Envelope:
    return Envelope.wrap(
        AnalyticsTracked(
            name=f"step{index % 5}",
            user_id=f"u{index % 5000}",
            team_id=f"t{index % 50}",
            properties={"n": index, "plan": "pro"},
        )
    )


def decode_costs(count: int = 100_000) -> dict[str, float]:
    """CPU µs per record of each step the live ingest adds to a raw read, on records
    shaped as the pre-fill's (in this process, no broker or database: what the
    rest of the machine does shows much less in CPU time than in wall time)."""
    records = []
    for index in range(count):
        envelope = _tracked(index)
        headers = [(name, value.encode()) for name, value in envelope.headers().items()]
        records.append((headers, envelope.value()))
    best: dict[str, float] = {}
    for _ in range(3):
        began = time.process_time()
        envelopes = [Envelope.from_record(headers, value) for headers, value in records]
        decoded = time.process_time()
        # As the consumer validates: a list per type, DECODE_SLICE records at a time.
        events = [
            event
            for start in range(0, count, DECODE_SLICE)
            for event in Envelope.decode_many(envelopes[start : start + DECODE_SLICE])
        ]
        validated = time.process_time()
        pairs = zip(envelopes, events, strict=True)
        rows = [analytics_row(envelope, event) for envelope, event in pairs]
        columns = list(map(list, zip(*rows, strict=True)))
        built = time.process_time()
        del columns
        for step, seconds in (
            ("envelope (headers, time, JSON)", decoded - began),
            ("validation (pydantic)", validated - decoded),
            ("row and columns", built - validated),
        ):
            best[step] = min(best.get(step, float("inf")), seconds / count * 1e6)
    return best


async def raw_read(bootstrap: str, count: int) -> float:
    """Seconds for a raw consumer to read `count` records of the topic (no decoding)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(records) for records in batches.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def stored(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(AnalyticsEvent)) or 0)


async def committed(admin: AIOKafkaAdminClient, group: str, partitions: int) -> int:
    """Records the group has committed, i.e. stored (the topic holds only the N)."""
    offsets = await admin.list_consumer_group_offsets(
        group, partitions=[TopicPartition(TOPIC, p) for p in range(partitions)]
    )
    return sum(max(0, meta.offset) for meta in offsets.values())


async def live_ingest(
    db: Database, kafka: KafkaSettings, count: int, profiler: cProfile.Profile | None = None
) -> tuple[float, float]:
    """Seconds for the whole ingest, and from the first committed batch on."""
    consumer = f"bench-{uuid.uuid4().hex[:6]}"  # a fresh group: it starts from offset 0
    broker = Bus(kafka)
    consumers = EventConsumers(db, KafkaProducer(broker), kafka)
    consumers.subscribe_batch(broker, consumer, [TOPIC], analytics.record_batch)
    # Progress from the group's commits, not count(*): polling the table would
    # load the database that is being measured.
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    started = time.perf_counter()
    first: float | None = None
    await broker.start()
    if profiler is not None:
        profiler.enable()
    try:
        while (done := await committed(admin, f"haunted.{consumer}", kafka.partitions)) < count:
            if done and first is None:
                first, first_done = time.perf_counter(), done
            await asyncio.sleep(0.05)
        ended = time.perf_counter()
    finally:
        if profiler is not None:
            profiler.disable()
        await broker.stop()
        await consumers.drain()
        await admin.close()
    assert first is not None, "the whole topic landed in one batch: raise --events"
    return ended - started, (ended - first) * count / (count - first_done)


def _print_profile(profiler: cProfile.Profile) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(30)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(40)
    heading("live ingest profile (cProfile of this process: own time, then cumulative)")
    print(out.getvalue())


async def run(backend: Backend, count: int, *, profile: bool = False) -> None:
    quiet_logs()
    with tempfile.TemporaryDirectory() as directory:
        async with embedded_broker() as tansu, stores(backend, Path(directory)) as store:
            kafka = KafkaSettings(tansu.bootstrap_servers, session_timeout_ms=6000)
            await ensure_topics(kafka)
            heading(f"analytics ingest, {count:,} events, {backend} backend")
            started = time.perf_counter()
            await prefill(tansu.bootstrap_servers, count)
            line("pre-fill", f"{time.perf_counter() - started:.1f} s")
            cpu = time.process_time()
            raw = count / await raw_read(tansu.bootstrap_servers, count)
            raw_cpu = (time.process_time() - cpu) / count * 1e6
            line("raw aiokafka read (baseline)", f"{raw:,.0f} events/s")
            line("  its CPU per record", f"{raw_cpu:.2f} µs")
            costs = decode_costs()
            for step, micros in costs.items():
                line(f"  + {step}", f"{micros:.2f} µs")
            ceiling = raw_cpu / (raw_cpu + sum(costs.values()))
            line("  ceiling of live / raw (CPU)", f"{ceiling:.2f}, before the database")

            db = Database(store.database_url)
            try:
                profiler = cProfile.Profile() if profile else None
                cpu = time.process_time()
                total_s, steady_s = await live_ingest(db, kafka, count, profiler)
                live_cpu = (time.process_time() - cpu) / count * 1e6
                assert await stored(db) == count
                line("live ingest, whole run", f"{count / total_s:,.0f} events/s")
                # All of this process's CPU for the ingest (fetch, decode, rows, the
                # driver's encoding, commits), against the raw read's: the ratio this
                # process alone allows; PostgreSQL and the broker need CPU besides.
                line("  its CPU per record", f"{live_cpu:.2f} µs")
                line("  ceiling of live / raw (this process)", f"{raw_cpu / live_cpu:.2f}")
                live = count / steady_s
                line("live ingest, after the group join", f"{live:,.0f} events/s")
                line("ratio live / raw", f"{live / raw:.2f}")
                figure = f"{live:,.0f} ev/s vs raw aiokafka read {raw:,.0f}/s"
                goal(f"analytics live ingest [{backend}]", figure, live / raw, 0.5)
                goal(
                    f"analytics live ingest rate [{backend}]",
                    figure,
                    live / 1000,
                    100,
                    unit="k ev/s",
                )
                if profiler is not None:
                    _print_profile(profiler)

                broker = Bus(kafka)
                await broker.connect()
                consumers = EventConsumers(db, KafkaProducer(broker), kafka)
                started = time.perf_counter()
                report = await replay(
                    replay_targets()["analytics"], consumers, db, kafka, rebuild=True
                )
                seconds = time.perf_counter() - started
                await broker.stop()
                rebuilt = await stored(db)
                assert rebuilt == count, f"the rebuild stored {rebuilt}, not {count}: {report}"
                line("replay --rebuild", f"{seconds:.1f} s ({report.records / seconds:,.0f} ev/s)")
                line("ratio replay / raw", f"{report.records / seconds / raw:.2f}")
            finally:
                await db.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="real")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the live ingest (this process's side)"
    )
    args = parser.parse_args(argv)
    tune_gc()
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        asyncio.run(run(backend, args.events, profile=args.profile))


if __name__ == "__main__":
    main()
