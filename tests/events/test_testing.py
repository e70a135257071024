"""events/testing.py: the fake producer unit tests publish to, no broker needed."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord

from events.testing import RecordingProducer
from haunted.runtime import Haunted


async def test_a_poison_record_is_dead_lettered_to_the_fake(
    facades: Haunted, recording_producer: RecordingProducer
) -> None:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic="user.registered",
        partition=0,
        offset=7,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=b"not a CloudEvent",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=16,
        headers=[],
    )

    async def handler(*_: object) -> None:
        raise AssertionError("a malformed record never reaches the handler")

    outcome = await facades.consumers.handle_record("analytics", record, handler)

    assert outcome == "dead_lettered"
    assert recording_producer.topics() == ["user.registered.dlq"]
    assert recording_producer.sent[0].value == b"not a CloudEvent"
    assert dict(recording_producer.sent[0].headers)["dlq_topic"] == "user.registered"


async def test_a_refusing_fake_fails_each_send() -> None:
    producer = RecordingProducer(fail_with=ConnectionError("refused"))
    future = await producer.send("t", b"k", {}, b"v")
    with pytest.raises(ConnectionError):
        await future
    assert producer.sent == []


def test_facades_start_no_broker(facades: Haunted, request: pytest.FixtureRequest) -> None:
    assert "kafka" not in request.fixturenames  # no embedded broker was started for it
    assert facades.broker.started is False
