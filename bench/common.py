"""What both benchmarks share: the stores of a backend, the broker, figures."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
import uvicorn
from redis.asyncio import Redis

from events.embedded import EmbeddedBroker
from haunted import migrations
from haunted.logging import configure_logging
from haunted.settings import Settings

Backend = Literal["embedded", "real"]
BACKENDS: tuple[Backend, ...] = ("embedded", "real")

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
# Not the tests' db 15: a benchmark and the suite may run at the same time.
# HAUNTED_BENCH_REDIS_URL moves every benchmark to another server (two runs at once).
REDIS_BENCH_URL = os.environ.get("HAUNTED_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@dataclass(frozen=True, slots=True)
class Stores:
    backend: Backend
    database_url: str
    redis_url: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def quiet_logs() -> None:
    """Warnings only: a log line per request would be part of what is measured."""
    configure_logging("WARNING", json=False)


@asynccontextmanager
async def stores(backend: Backend, directory: Path) -> AsyncIterator[Stores]:
    """A migrated scratch database and a clean Redis, removed afterwards.

    embedded: SQLite in `directory` and in-process Redis; real: a PostgreSQL
    database created for this run and Redis db 14, flushed.
    """
    if backend == "embedded":
        url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
        await migrations.upgrade(url)
        yield Stores(backend, url, "memory://")
        return
    name = f"haunted_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    redis = Redis.from_url(REDIS_BENCH_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
        await migrations.upgrade(url)
        await redis.flushdb()
        yield Stores(backend, url, REDIS_BENCH_URL)
    finally:
        await redis.flushdb()
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def embedded_broker() -> AsyncIterator[EmbeddedBroker]:
    """A fresh Tansu on a free port, for this benchmark only."""
    broker = EmbeddedBroker(free_port())
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def percentile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (1..99), interpolated as statistics.quantiles does."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def heading(title: str) -> None:
    # Other work on the machine shows in every figure: say how busy it was.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n== {title}\n  ({os.cpu_count()} cores, load average {load:.2f})")


def line(label: str, value: str) -> None:
    print(f"  {label:<34} {value}")


@asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[str]:
    """Serves `app` under uvicorn in this process, configured as `haunted serve`; yields the URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_config=None,
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the server stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def gateway_settings(
    found: Stores, broker: EmbeddedBroker, directory: Path, port: int, **overrides: Any
) -> Settings:
    """A Haunted process on a benchmark's stores and broker: test environment,
    warnings only, bcrypt at its cheapest (each benchmark overrides what it measures)."""
    values: dict[str, Any] = {
        "env": "test",
        "port": port,
        "data_dir": directory / ".haunted",
        "log_level": "WARNING",
        "database_url": found.database_url,
        "redis_url": found.redis_url,
        "kafka_bootstrap": broker.bootstrap_servers,
        "bcrypt_rounds": 4,
    }
    return Settings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]
