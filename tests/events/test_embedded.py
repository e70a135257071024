"""The embedded Tansu broker (events/embedded.py) as a child process."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from events.broker import KafkaSettings, ensure_topics
from events.embedded import EmbeddedBroker, EmbeddedBrokerError, port_is_free
from tests.conftest import free_port
from tests.events.conftest import tansu_pid


async def test_it_starts_and_answers_kafka_requests(kafka: EmbeddedBroker) -> None:
    settings = KafkaSettings(kafka.bootstrap_servers, partitions=2)
    assert await ensure_topics(settings, ["probe"]) == ["probe"]
    assert await ensure_topics(settings, ["probe"]) == []  # already there
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_topics(["probe"])
    finally:
        await admin.close()
    assert described["topic"] == "probe"
    assert len(described["partitions"]) == 2


async def test_stop_ends_the_process_and_frees_the_port() -> None:
    broker = EmbeddedBroker(free_port())
    await broker.start()
    pid = tansu_pid(broker)
    assert not port_is_free(broker.host, broker.port)

    await broker.stop()

    assert not Path(f"/proc/{pid}").exists()  # ended and reaped
    assert port_is_free(broker.host, broker.port)
    await broker.stop()  # twice is harmless


async def test_a_taken_port_is_a_one_line_error_naming_it() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = EmbeddedBroker(port)
        with pytest.raises(EmbeddedBrokerError) as raised:
            await broker.start()
    message = str(raised.value)
    assert str(port) in message
    assert "\n" not in message
    await broker.stop()  # nothing started: nothing to stop
