"""`haunted dlq list` and `haunted dlq redrive` (haunted/cli.py, events/deadletters.py)
against a real broker and database."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from events.broker import KafkaSettings, ensure_topics
from events.db import Database
from events.embedded import EmbeddedBroker
from events.envelope import Envelope
from schemas import NotificationRequested
from services.notifications.models import Notification
from tests.haunted.test_replay_cli import invoke


async def titles(database_url: str) -> list[str]:
    db = Database(database_url)
    try:
        async with db.read() as session:
            return list(await session.scalars(select(Notification.title)))
    finally:
        await db.dispose()


async def test_dead_letters_are_listed_and_redriven_once(
    kafka: EmbeddedBroker, database_url: str, tmp_path: Path
) -> None:
    settings = KafkaSettings(kafka.bootstrap_servers)
    await ensure_topics(settings)
    # A record notifications gave up on, as its consumer writes it to the .dlq.
    envelope = Envelope.wrap(NotificationRequested(user_id="u1", type="test", title="welcome back"))
    headers = {
        **envelope.headers(),
        "dlq_error": "ValueError: the template was broken",
        "dlq_consumer": "notifications",
        "dlq_topic": "notification.requested",
        "dlq_partition": "0",
        "dlq_offset": "7",
        "dlq_attempts": "3",
        "dlq_time": "2026-12-05T10:00:00Z",
    }
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            "notification.requested.dlq",
            envelope.value(),
            key=envelope.key,
            headers=[(name, value.encode()) for name, value in headers.items()],
        )
    finally:
        await producer.stop()
    env = {
        "HAUNTED_DATABASE_URL": database_url,
        "HAUNTED_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "HAUNTED_DATA_DIR": str(tmp_path),
        "COLUMNS": "300",
    }

    listed = await invoke(env, "dlq", "list")
    assert listed.exit_code == 0, listed.output
    assert envelope.id in listed.output
    assert "notifications" in listed.output and "the template was broken" in listed.output
    assert "notification.requested[0]@7" in listed.output
    assert "1 dead letters" in listed.output
    later = await invoke(env, "dlq", "list", "--since", "2999-01-01T00:00Z")
    assert "0 dead letters" in later.output, later.output

    dry = await invoke(env, "dlq", "redrive", "--topic", "notification.requested", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"skipped {envelope.id}: dry run" in dry.output
    assert await titles(database_url) == []

    redriven = await invoke(env, "dlq", "redrive", "--topic", "notification.requested")
    assert redriven.exit_code == 0, redriven.output
    assert "handled: 1" in redriven.output
    assert await titles(database_url) == ["welcome back"]

    # Again: the event is already applied, and nothing changes.
    again = await invoke(
        env, "dlq", "redrive", "--topic", "notification.requested", "--ids", envelope.id
    )
    assert again.exit_code == 0, again.output
    assert "already applied (duplicates): 1" in again.output
    assert await titles(database_url) == ["welcome back"]
