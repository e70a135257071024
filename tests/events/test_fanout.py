"""The group-less fan-out consumer that feeds pushes (events/fanout.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from events.broker import Bus, KafkaProducer, KafkaSettings
from events.envelope import Envelope
from events.fanout import Deliver, pin_start_offsets, pushable_topics, subscribe_fanout
from schemas import CATALOG, Audience, UserLoggedIn
from tests.conftest import eventually

TOPIC = "user.logged_in"


def login(session_id: str) -> Envelope:
    return Envelope.wrap(UserLoggedIn(user_id="u1", session_id=session_id))


async def start_fanout(broker: Bus, deliver: Deliver) -> None:
    subscriber = subscribe_fanout(broker, deliver)
    await broker.start()
    await pin_start_offsets(subscriber)


@pytest.fixture
async def gateway_broker(kafka_settings: KafkaSettings) -> AsyncIterator[Bus]:
    """A second process's broker: another gateway."""
    broker = Bus(kafka_settings)
    yield broker
    await broker.stop()


async def next_push(queue: asyncio.Queue[Envelope]) -> Envelope:
    return await asyncio.wait_for(queue.get(), 10)


def test_pushable_topics_leave_internal_ones_out() -> None:
    pushable = pushable_topics()
    internal = {topic for topic, model in CATALOG.items() if model.audience is Audience.INTERNAL}
    assert internal == {
        "user.login_failed",
        "flag.evaluated",
        "notification.requested",
        "analytics.tracked",
        # Sealed links for a mail channel: never pushed to clients.
        "user.email_verification_requested",
        "user.password_reset_requested",
        # For the services to forget a user: nothing a client is told.
        "user.erased",
    }
    assert internal.isdisjoint(pushable)
    assert set(pushable) == set(CATALOG) - internal
    assert not any(topic.endswith(".dlq") for topic in pushable)


async def test_an_event_published_right_after_start_reaches_every_gateway(
    broker: Bus, gateway_broker: Bus, producer: KafkaProducer
) -> None:
    before = login("before")
    await producer.publish(before)  # history: a gateway starts at the latest offset
    first: asyncio.Queue[Envelope] = asyncio.Queue()
    second: asyncio.Queue[Envelope] = asyncio.Queue()

    async def to_first(envelope: Envelope) -> None:
        first.put_nowait(envelope)

    async def to_second(envelope: Envelope) -> None:
        second.put_nowait(envelope)

    await start_fanout(broker, to_first)
    await start_fanout(gateway_broker, to_second)
    after = login("after")
    await producer.publish(after)

    for queue in (first, second):
        pushed = await next_push(queue)
        # Same key, same partition: had `before` been delivered, it would come first.
        assert pushed.id == after.id
        assert pushed.data == {"user_id": "u1", "session_id": "after"}
        assert queue.empty()


async def test_malformed_records_and_failed_pushes_do_not_stop_the_stream(
    broker: Bus, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> None:
    pushed: list[str] = []

    async def deliver(envelope: Envelope) -> None:
        pushed.append(envelope.data["session_id"])
        if envelope.data["session_id"] == "explodes":
            raise RuntimeError("a client went away mid-push")

    await start_fanout(broker, deliver)
    headers = login("x").headers()
    await (await producer.send(TOPIC, b"u1", headers, b"{not json"))
    await (await producer.send(TOPIC, b"u1", headers | {"ce_type": "user.unknown"}, b"{}"))
    await (await producer.send(TOPIC, b"u1", headers, b'{"user_id":"u1"}'))
    # Binary and null header values, as other Kafka clients may write them.
    client = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await client.start()
    try:
        raw = [(name, value.encode()) for name, value in login("binary").headers().items()]
        await client.send_and_wait(TOPIC, b"{}", key=b"u1", headers=[*raw, ("x", b"\xff")])
        await client.send_and_wait(TOPIC, b"{}", key=b"u1", headers=[*raw, ("x", None)])
    finally:
        await client.stop()
    await producer.publish(login("explodes"))
    await producer.publish(login("last"))

    async def last_arrived() -> bool:
        return "last" in pushed

    await eventually(last_arrived)
    assert pushed == ["explodes", "last"]
