"""`haunted replay SERVICE` (haunted/cli.py) against a real broker and database."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from events.broker import Bus, KafkaProducer, KafkaSettings, ensure_topics
from events.db import Database
from events.embedded import EmbeddedBroker
from haunted.cli import app
from services.analytics.models import AnalyticsEvent
from tests.haunted import logging_restored
from tests.services.analytics.data import known_events


async def invoke(env: dict[str, str], *args: str) -> Result:
    def run() -> Result:
        with logging_restored():
            return CliRunner().invoke(app, list(args), env=env)

    return await asyncio.to_thread(run)


async def stored(database_url: str) -> int:
    db = Database(database_url)
    try:
        async with db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(AnalyticsEvent)) or 0)
    finally:
        await db.dispose()


async def test_replay_rebuilds_with_a_progress_report(
    kafka: EmbeddedBroker, database_url: str, tmp_path: Path
) -> None:
    settings = KafkaSettings(kafka.bootstrap_servers)
    await ensure_topics(settings)
    broker = Bus(settings)
    await broker.connect()
    try:
        for envelope in known_events():
            await KafkaProducer(broker).publish(envelope)
    finally:
        await broker.stop()
    env = {
        "HAUNTED_DATABASE_URL": database_url,
        "HAUNTED_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "HAUNTED_DATA_DIR": str(tmp_path),
        "HAUNTED_LOG_JSON": "true",
    }

    result = await invoke(env, "replay", "analytics", "--rebuild")
    assert result.exit_code == 0, result.output
    assert f"replayed {len(known_events())} records" in result.output
    assert "ev/s" in result.output  # the progress bar's rate column
    assert await stored(database_url) == len(known_events())

    again = await invoke(
        env, "replay", "analytics", "--from-beginning", "--topic", "user.logged_in"
    )
    assert again.exit_code == 0, again.output
    assert await stored(database_url) == len(known_events())
    # A re-run finds every event stored already: all duplicates, and a rate.
    logins = sum(envelope.type == "user.logged_in" for envelope in known_events())
    assert f"replayed {logins} records: 0 handled, {logins} duplicates" in again.output
    assert "-- ev/s" not in again.output
    assert re.search(r"\d ev/s", again.output), again.output

    for args, named in [
        (["replay", "nosuch"], "unknown service nosuch"),
        (["replay", "analytics", "--since", "yesterday"], "not an RFC 3339 time"),
        (
            ["replay", "analytics", "--since", "2026-01-01T00:00Z", "--rebuild"],
            "from the beginning",
        ),
        (["replay", "analytics", "--topic", "nope"], "does not consume nope"),
    ]:
        refused = await invoke(env, *args)
        assert refused.exit_code == 2, refused.output
        assert named in refused.output
