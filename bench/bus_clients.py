"""Consuming and publishing through FastStream, as designed, vs aiokafka directly.

    python -m bench.bus_clients [--events N] [--rounds R]

The figures behind docs/architecture.md's choice of Kafka client. One topic is
pre-filled with N `analytics.tracked` records (3 partitions). Each side reads all
N with no consumer group (no join to wait for; the loop under a group is the
same), from the first record to the N-th, with a handler that only counts:

- raw aiokafka (baseline): `getmany(max_records=10_000)` in a loop;
- FastStream batch subscriber, as designed: `batch=True`, `max_records=10_000`,
  its own parser and decoder (each record's headers and its JSON body decoded
  for the handler's `list[dict]`), its default ack policy;
- FastStream subscriber, one record per call, as designed (`dict` body);
- FastStream batch subscriber with a parser and decoder that do nothing (what
  a handler that decodes the records itself, as events.consumer does, needs);
- aiokafka through `events.broker.Subscriber`, the bus's own loop: a batch per
  call (batch consumers), and a call per record inside it (the single-record
  path and the fan-out).

Publishing: N records sent without awaiting each ack (futures gathered per
5,000), through FastStream's `broker.publish(no_confirm=True)` and through
`AIOKafkaProducer.send`, in alternating rounds.

The FastStream rows run only when FastStream is installed (it is not a
dependency of the project any more; `pip install 'faststream[kafka]'` to
repeat them).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.analytics import prefill
from bench.common import embedded_broker, heading, line, quiet_logs
from events.broker import KafkaSettings, Subscriber, ensure_topics
from schemas import AnalyticsTracked

TOPIC = AnalyticsTracked.topic
FASTSTREAM = importlib.util.find_spec("faststream") is not None


class Counter:
    """Counts records; notes when the first and the N-th arrived."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.seen = 0
        self.first = 0.0
        self.last = 0.0
        self.done = asyncio.Event()

    def add(self, count: int) -> None:
        if not self.seen:
            self.first = time.perf_counter()
        self.seen += count
        if self.seen >= self.expected and not self.done.is_set():
            self.last = time.perf_counter()
            self.done.set()

    @property
    def rate(self) -> float:
        return self.seen / max(self.last - self.first, 1e-9)


async def raw_loop(bootstrap: str, count: int) -> float:
    counter = Counter(count)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(TOPIC, p) for p in consumer.partitions_for_topic(TOPIC) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while not counter.done.is_set():
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            counter.add(sum(len(records) for records in batches.values()))
    finally:
        await consumer.stop()
    return counter.rate


async def subscriber_loop(kafka: KafkaSettings, count: int, *, per_record: bool) -> float:
    counter = Counter(count)

    async def on_records(records: Sequence[Any], _: AIOKafkaConsumer) -> None:
        if per_record:
            for _record in records:
                await one()
        else:
            counter.add(len(records))

    async def one() -> None:
        counter.add(1)

    subscriber = Subscriber(
        kafka,
        [TOPIC],
        on_records,
        group_id=None,
        auto_offset_reset="earliest",
        name="bench",
        # As the batch consumers fetch; the single-record groups take 500 a fetch.
        max_records=500 if per_record else 10_000,
    )
    await subscriber.start()
    try:
        await counter.done.wait()
    finally:
        await subscriber.stop()
    return counter.rate


async def faststream_loop(kafka: KafkaSettings, count: int, mode: str) -> float:
    from faststream.kafka import KafkaBroker, KafkaMessage

    counter = Counter(count)
    broker = KafkaBroker(kafka.bootstrap_servers, logger=None)
    options: dict[str, Any] = {"group_id": None, "auto_offset_reset": "earliest"}
    if mode == "one":

        @broker.subscriber(TOPIC, **options)
        async def on_one(body: dict[str, Any]) -> None:
            counter.add(1)

    elif mode == "batch":

        @broker.subscriber(TOPIC, batch=True, max_records=10_000, **options)
        async def on_batch(bodies: list[dict[str, Any]]) -> None:
            counter.add(len(bodies))

    else:  # the records as they came: a parser and decoder that do nothing

        async def parse(records: tuple[Any, ...]) -> Any:
            # No consumer: a parser is not given one (the bench commits nothing).
            return KafkaMessage(body=b"", raw_message=records, headers={}, path={}, consumer=None)

        async def decode(message: Any) -> None:
            return None

        async def on_raw(message: KafkaMessage) -> None:
            counter.add(len(message.raw_message))

        # The message itself, not its body: FastStream reads the (postponed) annotation.
        on_raw.__annotations__["message"] = KafkaMessage
        broker.subscriber(
            TOPIC, batch=True, max_records=10_000, parser=parse, decoder=decode, **options
        )(on_raw)

    await broker.start()
    try:
        await counter.done.wait()
    finally:
        await broker.stop()
    return counter.rate


async def publish_rates(bootstrap: str, count: int, rounds: int = 4) -> tuple[float, float]:
    """(aiokafka, FastStream) records/s, sending the same records in alternating rounds."""
    from faststream.kafka import KafkaBroker

    value = b'{"name":"step1","user_id":"u1","team_id":"t1","properties":{"n":1}}'
    headers = {"ce_specversion": "1.0", "ce_type": TOPIC, "ce_id": "x" * 36}
    raw_headers = [(name, text.encode()) for name, text in headers.items()]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    broker = KafkaBroker(bootstrap, linger_ms=5, acks="all", logger=None)
    await producer.start()
    await broker.connect()

    async def raw(n: int) -> None:
        for start in range(0, n, 5_000):
            futures = [
                await producer.send(TOPIC, value, key=b"u1", headers=raw_headers)
                for _ in range(min(5_000, n - start))
            ]
            await asyncio.gather(*futures)

    async def faststream(n: int) -> None:
        for start in range(0, n, 5_000):
            futures = [
                await broker.publish(value, TOPIC, key=b"u1", headers=headers, no_confirm=True)
                for _ in range(min(5_000, n - start))
            ]
            await asyncio.gather(*futures)

    spent = {"raw": 0.0, "faststream": 0.0}
    sides: dict[str, Callable[[int], Awaitable[None]]] = {"raw": raw, "faststream": faststream}
    try:
        await raw(1_000)
        await faststream(1_000)
        for turn in range(rounds):
            for side in ("raw", "faststream") if turn % 2 == 0 else ("faststream", "raw"):
                began = time.perf_counter()
                await sides[side](count // rounds)
                spent[side] += time.perf_counter() - began
    finally:
        await producer.stop()
        await broker.stop()
    sent = count // rounds * rounds
    return sent / spent["raw"], sent / spent["faststream"]


async def run(count: int, rounds: int) -> None:
    quiet_logs()
    async with embedded_broker() as tansu:
        kafka = KafkaSettings(tansu.bootstrap_servers)
        await ensure_topics(kafka, [TOPIC])
        await prefill(tansu.bootstrap_servers, count)
        heading(
            f"Kafka clients: consume {count:,} records, no group, counting handler, "
            f"best of {rounds} rounds in rotating order"
        )
        sides: dict[str, Callable[[], Awaitable[float]]] = {
            "raw aiokafka getmany (baseline)": lambda: raw_loop(tansu.bootstrap_servers, count),
            "bus Subscriber, batch": lambda: subscriber_loop(kafka, count, per_record=False),
            "bus Subscriber, per record": lambda: subscriber_loop(kafka, count, per_record=True),
        }
        if FASTSTREAM:
            sides["FastStream batch, as designed"] = lambda: faststream_loop(kafka, count, "batch")
            sides["FastStream batch, no parse/decode"] = lambda: faststream_loop(
                kafka, count, "raw"
            )
            sides["FastStream one record, as designed"] = lambda: faststream_loop(
                kafka, count, "one"
            )
        # Other work on the machine comes and goes: every side runs in every round,
        # each round in another order, and each keeps its best.
        rates: dict[str, float] = dict.fromkeys(sides, 0.0)
        order = list(sides)
        for turn in range(rounds):
            shift = turn % len(order)
            for label in order[shift:] + order[:shift]:
                rates[label] = max(rates[label], await sides[label]())
        raw = rates["raw aiokafka getmany (baseline)"]
        for label, rate in rates.items():
            line(label, f"{rate:>10,.0f} records/s  ({rate / raw:.2f}x)")
        if FASTSTREAM:
            heading(f"Kafka clients: publish {count:,} records, acks gathered per 5,000")
            aiokafka_rate, faststream_rate = await publish_rates(tansu.bootstrap_servers, count)
            line("AIOKafkaProducer.send (baseline)", f"{aiokafka_rate:>10,.0f} records/s")
            line(
                "FastStream publish(no_confirm)",
                f"{faststream_rate:>10,.0f} records/s  ({faststream_rate / aiokafka_rate:.2f}x)",
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bus_clients")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    asyncio.run(run(args.events, args.rounds))


if __name__ == "__main__":
    main()
