"""A process starts while the broker is down, serves, and catches up when it returns.

The outbox exists to absorb a broker outage; a process that cannot start
without the broker defeats it (a restart during an outage would take every
gateway and worker down). Here one starts with nothing listening on the broker's
port, registers a user (its events wait in the outbox), and once a broker comes
up on that port the relay publishes them and the consumer groups handle them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from events.consumer import ProcessedEvent
from events.embedded import EmbeddedBroker
from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from tests.conftest import PASSWORD, eventually, free_port, unique_email
from tests.faults.conftest import fault_settings


@pytest.fixture
async def later_broker() -> AsyncIterator[EmbeddedBroker]:
    """A broker on a port where nothing listens yet: the test starts it when it wants."""
    broker = EmbeddedBroker(free_port())
    yield broker
    await broker.stop()


async def test_a_process_starts_with_the_broker_down_and_catches_up_when_it_returns(
    database_url: str,
    redis_url: str,
    later_broker: EmbeddedBroker,
    tmp_path: Path,
    signing_key_files: tuple[Path, Path],
) -> None:
    settings = fault_settings(
        database_url,
        redis_url,
        later_broker.bootstrap_servers,
        tmp_path,
        signing_key_files,
    )
    app = Haunted.build(settings)
    async with app.running():  # returns although nothing answers on the broker's port
        result = await app.services.auth.register(unique_email(), PASSWORD)
        assert result.user.id

        async def pending() -> int:
            async with app.db.read() as session:
                return int(
                    await session.scalar(
                        select(func.count())
                        .select_from(OutboxRecord)
                        .where(OutboxRecord.sent_at.is_(None))
                    )
                    or 0
                )

        assert await pending() > 0  # absorbed by the outbox

        await later_broker.start()
        await app.bus_connected()

        async def handled() -> bool:
            async with app.db.read() as session:
                done = await session.scalar(
                    select(func.count())
                    .select_from(ProcessedEvent)
                    .where(ProcessedEvent.consumer == "notifications")
                )
            return bool(done) and await pending() == 0

        await eventually(handled, timeout_s=60)
