"""PostgreSQL going away while a worker works through a backlog costs time, never events.

The review's reproduction: the analytics worker ingests a backlog of tracked
events when its database stops (every connection cut) and comes back a few
seconds later. Before, each failed batch was split and every record tried three
times in 0.3 s, then dead-lettered and committed past: events were lost from the
counts. Now the group waits the outage out, paused, and stores every event once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from events.broker import ensure_topics
from events.embedded import EmbeddedBroker
from haunted.runtime import kafka_settings
from tests.conftest import eventually
from tests.events.conftest import read_all
from tests.faults.conftest import fault_settings, outage_s
from tests.faults.scratch import ScratchPostgres
from tests.services.analytics.test_crash import (
    TOPIC,
    committed,
    prefill,
    settings_env,
    store,
    worker,
)

EVENTS = 30_000


async def test_postgres_down_mid_backlog_dead_letters_nothing_and_counts_everything(
    scratch_postgres: ScratchPostgres,
    kafka: EmbeddedBroker,
    tmp_path: Path,
    signing_key_files: tuple[Path, Path],
    pytestconfig: pytest.Config,
) -> None:
    settings = fault_settings(
        scratch_postgres.url(),
        "memory://",
        kafka.bootstrap_servers,
        tmp_path,
        signing_key_files,
        consumer_max_backoff_s=1.0,
    )
    kafka_config = kafka_settings(settings)
    await ensure_topics(kafka_config)
    sent = await prefill(kafka_config.bootstrap_servers, EVENTS)
    down_for = outage_s(pytestconfig, short=3, long=30)

    async with store(settings.database_url) as events:
        first_count = await events.stored()
        assert first_count == 0
    async with worker(settings_env(settings, tmp_path), tmp_path, "analytics") as running:

        async def started() -> bool:
            assert running.process.returncode is None, running.output()
            async with store(settings.database_url) as events:
                return await events.stored() > 0

        await eventually(started, timeout_s=60, interval_s=0.01)
        await scratch_postgres.stop("fast")  # every session cut, new ones refused
        await asyncio.sleep(down_for)  # the outage itself (not a wait for a condition)
        assert running.process.returncode is None, running.output()
        await scratch_postgres.start()
        back = time.monotonic()

        async def caught_up() -> bool:
            assert running.process.returncode is None, running.output()
            offsets = await committed(kafka_config.bootstrap_servers, sent.ends)
            return offsets == sent.ends

        await eventually(caught_up, timeout_s=120, interval_s=0.1)
        recovered = time.monotonic() - back
        print(f"\nPostgreSQL down {down_for:.0f} s: caught up {recovered:.1f} s after")
        running.send(signal.SIGTERM)
        status = await asyncio.wait_for(running.process.wait(), 30)
        assert status == 0, running.output()
        assert "dependency away; consumer paused" in running.output()  # the outage was met

    async with store(settings.database_url) as events:
        rows = await events.rows()
    assert len(rows) == EVENTS, f"{EVENTS - len(rows)} events not counted"
    assert {event_id for event_id, _ in rows} == set(sent.names)
    assert await read_all(kafka_config, TOPIC + ".dlq") == []
