"""A program outside Haunted that reads one of its topics.

This is what another team's service looks like: it knows only the public event
contract (CloudEvents 1.0 in Kafka binary mode: `ce_*` headers, the event's
data as a JSON value, the subject as the key) and uses a plain Kafka client.
It imports nothing from Haunted.

It reads with its own consumer group, prints one line per event and commits
the offsets after each batch it has processed: if it stops half-way, it
starts again after the last committed batch, so it may see an event twice but
never skips one. Real consumers deduplicate on `ce_id`.

    python examples/downstream_consumer.py --bootstrap 127.0.0.1:9092 \
        --topic user.logged_in --group my-team.login-audit
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

SPECVERSION = "1.0"


@dataclass(frozen=True)
class CloudEvent:
    id: str
    type: str
    source: str
    time: str
    subject: str
    data: dict[str, Any]


def decode(record: ConsumerRecord[bytes, bytes]) -> CloudEvent:
    """A Kafka record in CloudEvents binary mode; ValueError when it is not one."""
    headers = {name: (value or b"").decode() for name, value in record.headers}
    if headers.get("ce_specversion") != SPECVERSION:
        raise ValueError(f"not a CloudEvent {SPECVERSION}: ce_specversion is missing or different")
    data = json.loads(record.value or b"")
    if not isinstance(data, dict):
        raise ValueError("the value is not a JSON object")
    return CloudEvent(
        id=headers["ce_id"],
        type=headers["ce_type"],
        source=headers["ce_source"],
        time=headers["ce_time"],
        # The key and ce_subject carry the same value; the key is always there.
        subject=(record.key or b"").decode(),
        data=data,
    )


def describe(event: CloudEvent) -> str:
    data = json.dumps(event.data, separators=(",", ":"), sort_keys=True)
    return (
        f"{event.time} {event.type} id={event.id} subject={event.subject} "
        f"source={event.source} data={data}"
    )


async def consume(
    bootstrap: str,
    topic: str,
    group: str,
    max_events: int | None,
    session_timeout_ms: int,
) -> int:
    """Prints the topic's events until stopped (or until max_events); returns how many."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        # A new group starts from the oldest retained event; afterwards, from its commits.
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(100, session_timeout_ms // 5),
    )
    await consumer.start()
    seen = 0
    try:
        while max_events is None or seen < max_events:
            # Never fetch more than is left to print: every fetched record is
            # processed before the commit that covers it.
            left = None if max_events is None else max_events - seen
            batches = await consumer.getmany(timeout_ms=1000, max_records=left)
            for records in batches.values():
                for record in records:
                    try:
                        event = decode(record)
                    except (ValueError, KeyError, UnicodeDecodeError) as error:
                        # A record off the contract is skipped, not fatal.
                        print(
                            f"skipped {record.topic}/{record.partition}@{record.offset}: {error!r}",
                            file=sys.stderr,
                        )
                        continue
                    print(describe(event), flush=True)
                    seen += 1
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    return seen


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Print the events of one Haunted topic.")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument("--topic", default="user.logged_in", help="the topic (= event type)")
    parser.add_argument(
        "--group", default="example.downstream-consumer", help="this program's consumer group"
    )
    parser.add_argument(
        "--max-events", type=int, default=None, help="exit after printing this many events"
    )
    parser.add_argument(
        "--session-timeout-ms",
        type=int,
        default=10_000,
        help="consumer group session timeout; Kafka accepts 6000 and more by default",
    )
    args = parser.parse_args(argv)
    if args.max_events is not None and args.max_events < 1:
        parser.error("--max-events must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(
            consume(
                args.bootstrap, args.topic, args.group, args.max_events, args.session_timeout_ms
            )
        )
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
