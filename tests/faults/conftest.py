"""Fault-suite fixtures: servers of the test's own, which it may stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from haunted import migrations
from haunted.settings import Settings
from tests.conftest import make_settings
from tests.faults.scratch import ScratchPostgres, ScratchRedis


def fault_settings(
    database_url: str,
    redis_url: str,
    kafka_bootstrap: str,
    tmp_path: Path,
    signing_key_files: tuple[Path, Path],
    **values: Any,
) -> Settings:
    """A process's settings over the stores a fault test chose (often its own)."""
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        kafka_bootstrap=kafka_bootstrap,
        data_dir=tmp_path / ".haunted",
        jwt_private_key_file=signing_key_files[0],
        jwt_public_key_file=signing_key_files[1],
        **values,
    )


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
