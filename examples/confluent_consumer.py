"""A program outside Haunted that reads one of its topics with confluent-kafka (librdkafka).

Like examples/downstream_consumer.py, but in the client most non-Python-asyncio
teams use. It knows only the public event contract (CloudEvents 1.0 in Kafka
binary mode: `ce_*` headers, the data as a JSON value, the subject as the key)
and imports nothing from Haunted.

Offsets are committed by hand, synchronously, after the records they cover
are processed (enable.auto.commit is off): a crash replays at most the last
uncommitted records, never skips one. Deduplicate on `ce_id` downstream.

    python examples/confluent_consumer.py --bootstrap 127.0.0.1:9092 \
        --topic user.logged_in --group my-team.login-audit
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message

SPECVERSION = "1.0"


@dataclass(frozen=True)
class CloudEvent:
    id: str
    type: str
    source: str
    time: str
    subject: str
    data: dict[str, Any]


def decode(message: Message) -> CloudEvent:
    """A record in CloudEvents binary mode; ValueError when it is not one."""
    headers: dict[str, str] = {}
    for pair in message.headers() or []:
        name, value = pair[0], pair[1]
        headers[str(name)] = value.decode() if isinstance(value, bytes) else str(value or "")
    if headers.get("ce_specversion") != SPECVERSION:
        raise ValueError(f"not a CloudEvent {SPECVERSION}: ce_specversion is missing or different")
    data = json.loads(message.value() or b"")
    if not isinstance(data, dict):
        raise ValueError("the value is not a JSON object")
    key = message.key()
    return CloudEvent(
        id=headers["ce_id"],
        type=headers["ce_type"],
        source=headers["ce_source"],
        time=headers["ce_time"],
        subject=key.decode() if isinstance(key, bytes) else headers.get("ce_subject", ""),
        data=data,
    )


def describe(event: CloudEvent) -> str:
    data = json.dumps(event.data, separators=(",", ":"), sort_keys=True)
    return (
        f"{event.time} {event.type} id={event.id} subject={event.subject} "
        f"source={event.source} data={data}"
    )


def consume(
    bootstrap: str, topic: str, group: str, max_events: int | None, session_timeout_ms: int
) -> int:
    """Prints the topic's events until stopped (or until max_events); returns how many."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",  # a new group starts from the oldest event
            "enable.auto.commit": False,
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(100, session_timeout_ms // 5),
        }
    )
    consumer.subscribe([topic])
    seen = 0
    try:
        while max_events is None or seen < max_events:
            left = 100 if max_events is None else min(100, max_events - seen)
            messages = consumer.consume(num_messages=left, timeout=1.0)
            for message in messages:
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(str(error))
                try:
                    event = decode(message)
                except (ValueError, KeyError, UnicodeDecodeError) as problem:
                    where = f"{message.topic()}/{message.partition()}@{message.offset()}"
                    print(f"skipped {where}: {problem!r}", file=sys.stderr)
                    continue
                print(describe(event), flush=True)
                seen += 1
            if messages:
                # Only after every fetched record is processed; synchronous, so
                # the next batch starts only once these offsets are safe.
                consumer.commit(asynchronous=False)
    finally:
        consumer.close()  # leaves the group at once instead of after the session timeout
    return seen


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Print the events of one Haunted topic.")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka bootstrap servers")
    parser.add_argument("--topic", default="user.logged_in", help="the topic (= event type)")
    parser.add_argument("--group", default="example.confluent-consumer", help="consumer group")
    parser.add_argument("--max-events", type=int, default=None, help="exit after this many")
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    args = parser.parse_args(argv)
    if args.max_events is not None and args.max_events < 1:
        parser.error("--max-events must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        consume(args.bootstrap, args.topic, args.group, args.max_events, args.session_timeout_ms)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
