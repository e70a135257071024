"""examples/downstream_consumer.py, run as an outside program against a real broker."""

from __future__ import annotations

import ast
import asyncio
import sys
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from events.broker import KafkaSettings, ensure_topics
from events.embedded import EmbeddedBroker
from events.envelope import Envelope
from schemas import UserLoggedIn, UserLoggedOut

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "downstream_consumer.py"
HAUNTED_PACKAGES = {"haunted", "gateway", "services", "events", "schemas"}
TOPIC = "user.logged_in"


async def publish(bootstrap: str, count: int) -> list[Envelope]:
    """Publishes `count` events exactly as the outbox relay writes them."""
    envelopes = [
        Envelope.wrap(UserLoggedIn(user_id=str(uuid.uuid4()), session_id=str(uuid.uuid4())))
        for _ in range(count)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                envelope.type,
                envelope.value(),
                key=envelope.key,
                headers=[(name, value.encode()) for name, value in envelope.headers().items()],
            )
    finally:
        await producer.stop()
    return envelopes


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
        "1000",  # the embedded broker joins a group in about half of this
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


async def committed_total(bootstrap: str, group: str) -> int:
    """The group's committed offsets on the topic, summed over its partitions."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await reader.start()
    try:
        partitions = reader.partitions_for_topic(TOPIC) or set()
        offsets = [await reader.committed(TopicPartition(TOPIC, p)) for p in partitions]
    finally:
        await reader.stop()
    assert partitions
    return sum(offset or 0 for offset in offsets)


async def test_prints_each_event_and_commits_after_processing(kafka: EmbeddedBroker) -> None:
    bootstrap = kafka.bootstrap_servers
    await ensure_topics(KafkaSettings(bootstrap), [TOPIC])
    first = await publish(bootstrap, 2)
    group = f"example-{uuid.uuid4().hex[:8]}"

    code, out, err = await run_example(bootstrap, group, max_events=2)

    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2, out
    for envelope in first:
        line = next(line for line in lines if f"id={envelope.id}" in line)
        assert f"{TOPIC} " in line
        assert f"subject={envelope.subject}" in line
        assert "source=haunted/auth" in line
        assert envelope.data["session_id"] in line
    assert await committed_total(bootstrap, group) == 2

    # The same group starts after its commits: only the new event is printed.
    (third,) = await publish(bootstrap, 1)
    code, out, err = await run_example(bootstrap, group, max_events=1)
    assert code == 0, err
    assert [f"id={third.id}" in line for line in out.splitlines()] == [True]
    assert all(f"id={envelope.id}" not in out for envelope in first)


async def test_skips_a_record_off_the_contract_and_goes_on(kafka: EmbeddedBroker) -> None:
    bootstrap = kafka.bootstrap_servers
    topic = UserLoggedOut.topic
    # One partition: the bad record is certainly read before the good one.
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

    code, out, err = await run_example(bootstrap, "example-skip", max_events=1, topic=topic)

    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert f"id={good.id}" in lines[0]
    assert f"skipped {topic}/0@0" in err


def test_imports_nothing_from_haunted() -> None:
    """The example stands for an outside program: the public contract is all it knows."""
    tree = ast.parse(EXAMPLE.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert "aiokafka" in imported
    assert not imported & HAUNTED_PACKAGES, imported & HAUNTED_PACKAGES
