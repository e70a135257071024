"""Fault-suite fixtures: servers of the test's own, which it may stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from haunted import migrations
from tests.faults.scratch import ScratchPostgres, ScratchRedis


def outage_s(config: pytest.Config, short: float, long: float) -> float:
    """An outage length: `short` in `make test` (enough to outlast every retry and
    backoff step), `long` with `--long-outages` (`make faults`)."""
    return long if config.getoption("--long-outages") else short


@pytest.fixture
async def scratch_postgres() -> AsyncIterator[ScratchPostgres]:
    """A migrated PostgreSQL of this test's own."""
    server = ScratchPostgres()
    await server.create()
    await migrations.upgrade(server.url())
    try:
        yield server
    finally:
        await server.destroy()


@pytest.fixture
async def scratch_redis(tmp_path: Path) -> AsyncIterator[ScratchRedis]:
    server = ScratchRedis(tmp_path / "redis")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
