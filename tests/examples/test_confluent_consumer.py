"""examples/confluent_consumer.py: confluent-kafka (librdkafka) against the embedded Tansu."""

from __future__ import annotations

import ast
import asyncio
import sys
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer

from events.broker import KafkaSettings, ensure_topics
from events.embedded import EmbeddedBroker
from events.envelope import Envelope
from schemas import UserLoggedOut
from tests.examples.test_downstream_consumer import (
    HAUNTED_PACKAGES,
    TOPIC,
    committed_total,
    publish,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "confluent_consumer.py"


async def run_example(
    bootstrap: str, group: str, max_events: int, topic: str = TOPIC
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--max-events",
        str(max_events),
        "--session-timeout-ms",
        "1000",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # A guard against a hang, not a timing: the example exits once it has its events.
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_reads_decodes_and_commits_after_processing(kafka: EmbeddedBroker) -> None:
    bootstrap = kafka.bootstrap_servers
    await ensure_topics(KafkaSettings(bootstrap), [TOPIC])
    first = await publish(bootstrap, 2)
    group = f"confluent-{uuid.uuid4().hex[:8]}"

    code, out, err = await run_example(bootstrap, group, max_events=2)

    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, out
    for envelope in first:
        line = next(line for line in lines if f"id={envelope.id}" in line)
        assert f"subject={envelope.subject}" in line
        assert "source=haunted/auth" in line
        assert envelope.data["session_id"] in line
    assert await committed_total(bootstrap, group) == 2

    # The same group resumes after its commits: only the new event is printed.
    (third,) = await publish(bootstrap, 1)
    code, out, err = await run_example(bootstrap, group, max_events=1)
    assert code == 0, err
    assert [f"id={third.id}" in line for line in out.splitlines()] == [True]


async def test_skips_a_record_off_the_contract(kafka: EmbeddedBroker) -> None:
    bootstrap = kafka.bootstrap_servers
    topic = UserLoggedOut.topic
    await ensure_topics(KafkaSettings(bootstrap, partitions=1), [topic])
    good = Envelope.wrap(UserLoggedOut(user_id="u-1", session_id="s-1"))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"not json", key=b"u-1")
        await producer.send_and_wait(
            topic,
            good.value(),
            key=good.key,
            headers=[(name, value.encode()) for name, value in good.headers().items()],
        )
    finally:
        await producer.stop()

    code, out, err = await run_example(bootstrap, "confluent-skip", max_events=1, topic=topic)

    assert code == 0, err
    assert [f"id={good.id}" in line for line in out.splitlines()] == [True]
    assert f"skipped {topic}/0@0" in err


def test_imports_nothing_from_haunted() -> None:
    tree = ast.parse(EXAMPLE.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "confluent_kafka" in imported
    assert not imported & HAUNTED_PACKAGES
