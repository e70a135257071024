"""Shared fixtures: real broker, real databases, real Redis, real servers.

Integration fixtures are parametrized over the two backends of runtime.md:
`embedded` (SQLite + in-process Redis) and `real` (this machine's PostgreSQL
and Redis). The Kafka-compatible broker (Tansu) is started per test: it is
ready in well under a second and a fresh one keeps tests independent.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from redis.asyncio import Redis

from events.embedded import EmbeddedBroker
from events.testing import RecordingProducer
from haunted import migrations
from haunted.cli import uvicorn_config
from haunted.runtime import Haunted
from haunted.services import NAMES
from haunted.settings import Settings
from haunted.telemetry import setup_tracing
from services.auth import generate_signing_key

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
# One Redis database per concurrent suite (a CI run, a parallel worker, a second checkout):
# the tests flush it, so two suites must never share one.
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BACKENDS = ("embedded", "real")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--long-outages",
        action="store_true",
        help="fault suite: the outage lengths of the issue (30-60 s) instead of a few seconds",
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pg_url(database: str, driver: str = "postgresql+asyncpg") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    except OSError as error:  # the real backend is part of the suite: never skip it
        pytest.fail(f"PostgreSQL is unreachable on {PG_HOST}:{PG_PORT}: {error}")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def signing_key_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One RSA key pair for the whole run: generating one per test costs more than the test."""
    directory = tmp_path_factory.mktemp("keys")
    key = generate_signing_key()
    (directory / "private.pem").write_bytes(key.private_pem)
    (directory / "public.pem").write_bytes(key.public_pem)
    return directory / "private.pem", directory / "public.pem"


@pytest.fixture(scope="session")
async def migrated_template(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A database migrated once by `haunted migrate`'s code; each test gets a copy."""
    if backend == "embedded":
        path = tmp_path_factory.mktemp("template") / "template.db"
        await migrations.upgrade(f"sqlite+aiosqlite:///{path}")
        yield str(path)
        return
    name = f"haunted_template_{uuid.uuid4().hex[:8]}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await migrations.upgrade(pg_url(name))
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database_url(backend: str, migrated_template: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "embedded":
        path = tmp_path / "haunted.db"
        shutil.copyfile(migrated_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    name = f"haunted_test_{uuid.uuid4().hex[:12]}"
    admin = await _pg_admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
        yield pg_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def redis_url(backend: str) -> str:
    if backend == "embedded":
        return "memory://"
    client = Redis.from_url(REDIS_TEST_URL)
    try:
        await client.flushdb()
    except OSError as error:
        pytest.fail(f"Redis is unreachable at {REDIS_TEST_URL}: {error}")
    finally:
        await client.aclose()
    return REDIS_TEST_URL


@pytest.fixture
async def kafka() -> AsyncIterator[EmbeddedBroker]:
    broker = EmbeddedBroker(free_port())
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
def settings(
    database_url: str,
    redis_url: str,
    kafka: EmbeddedBroker,
    tmp_path: Path,
    signing_key_files: tuple[Path, Path],
) -> Settings:
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        kafka_bootstrap=kafka.bootstrap_servers,
        data_dir=tmp_path / ".haunted",
        backup_dir=tmp_path / "backups",
        jwt_private_key_file=signing_key_files[0],
        jwt_public_key_file=signing_key_files[1],
    )


@pytest.fixture
def offline_settings(
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    signing_key_files: tuple[Path, Path],
) -> Settings:
    """`settings` with no broker: its address is a free port nothing listens on, and
    nothing built from these settings may connect to it."""
    return make_settings(
        database_url=database_url,
        redis_url=redis_url,
        kafka_bootstrap=f"127.0.0.1:{free_port()}",
        data_dir=tmp_path / ".haunted",
        backup_dir=tmp_path / "backups",
        jwt_private_key_file=signing_key_files[0],
        jwt_public_key_file=signing_key_files[1],
    )


def make_settings(**values: Any) -> Settings:
    """Test settings: fast bcrypt and fast group joins; no .env, no environment leaks."""
    defaults: dict[str, Any] = {
        "env": "test",
        "bcrypt_rounds": 4,
        "kafka_session_timeout_ms": 1000,
        "kafka_heartbeat_interval_ms": 200,
        "outbox_poll_interval_s": 0.05,
        "consumer_retry_backoff_s": 0.01,
        "consumer_max_backoff_s": 0.5,
        "log_json": False,
        # `haunted worker` children serve probes there: never a fixed port on a shared machine.
        "worker_port": free_port(),
    }
    return Settings(_env_file=None, **{**defaults, **values})


@pytest.fixture
async def haunted(settings: Settings) -> AsyncIterator[Haunted]:
    """Every service of one process, started, without the HTTP server."""
    async with Haunted.build(settings).running() as app:
        yield app


@pytest.fixture
def recording_producer() -> RecordingProducer:
    """What the `facades` process's consumers would publish (dead letters)."""
    return RecordingProducer()


@pytest.fixture
async def facades(
    offline_settings: Settings, recording_producer: RecordingProducer
) -> AsyncIterator[Haunted]:
    """The facades of a built but not started process: database and Redis only.

    For tests of a facade's own behaviour (rows, outbox, errors): no broker at all
    (building connects to nothing; consumers publish to `producer`), so no broker
    start and no group joins to wait for.
    """
    app = Haunted.build(offline_settings, producer=recording_producer)
    try:
        yield app
    finally:
        await app.redis.aclose()
        await app.db.dispose()


@dataclass
class Server:
    """A Haunted process serving on a free port: what a client on the network sees."""

    url: str
    haunted: Haunted

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        async with self.client(token) as client:
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables or {}}
            )
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> Any:
        """The answer's data, for a call that must succeed."""
        body = await self.graphql(query, variables, token)
        assert "errors" not in body, body
        return body["data"]


@asynccontextmanager
async def serve(
    settings: Settings, port: int | None = None, *, workers: Iterable[str] = NAMES
) -> AsyncIterator[Server]:
    """A Haunted process with these settings serving on `port` (a free one by default);
    `workers=()` makes it a gateway only (`haunted serve`)."""
    port = port or free_port()
    update = {"port": port, "host": "127.0.0.1"}
    haunted = Haunted.build(settings.model_copy(update=update), workers=workers)
    server = uvicorn.Server(uvicorn_config(haunted))  # as `haunted serve` runs it
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped before it started")
        await asyncio.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", haunted)
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def serve_worker(
    settings: Settings, *, workers: Iterable[str] = NAMES
) -> AsyncIterator[Server]:
    """`haunted worker`: the services' consumers and relay, with /metrics, /healthz and
    /readyz served on `settings.worker_port`; `url` is the probes' address."""
    haunted = Haunted.build(settings, gateway=False, workers=workers)
    async with haunted.running():
        config = uvicorn.Config(
            haunted.probe_app(), host="127.0.0.1", port=settings.worker_port, log_config=None
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        try:
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("the probes stopped before they started")
                await asyncio.sleep(0.02)
            yield Server(f"http://127.0.0.1:{settings.worker_port}", haunted)
        finally:
            server.should_exit = True
            await task


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    async with serve(settings) as running:
        yield running


REGISTER = """
mutation($email: String!, $password: String!, $teamName: String) {
  register(email: $email, password: $password, teamName: $teamName) {
    token expiresAt refreshToken sessionId
    user { id email memberships { team { id name } role } permissions }
  }
}"""

LOGIN = """
mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { token expiresAt user { id email } }
}"""

PASSWORD = "correct horse battery staple"


def unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


async def register(server: Server, email: str | None = None) -> dict[str, Any]:
    """Registers a fresh user; returns the register payload (token, user)."""
    body = await server.graphql(REGISTER, {"email": email or unique_email(), "password": PASSWORD})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["register"]
    return payload


async def graphql_ok(
    server: Server, query: str, variables: dict[str, Any], token: str | None = None
) -> Any:
    """The `data` of a request that must succeed."""
    body = await server.graphql(query, variables, token)
    assert "errors" not in body, body
    return body["data"]


async def eventually(check: Any, timeout_s: float = 10.0, interval_s: float = 0.05) -> Any:
    """Polls an async check until it returns something truthy; fails after timeout_s."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in {timeout_s}s; last result: {result!r}")
        await asyncio.sleep(interval_s)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """A test that configures logging leaves the next one the defaults it found."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(autouse=True)
def _no_env_leak(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests build their Settings explicitly; a developer's HAUNTED_* must not change them."""

    for name in list(os.environ):
        if name.startswith("HAUNTED_"):
            monkeypatch.delenv(name)
    yield


class SpanCollector(SpanExporter):
    """Keeps finished spans while a test that asked for them runs (`spans` fixture).

    The tracer provider is process-wide and installed once: after the first
    tracing test, every later test's spans are exported here too, and dropped."""

    def __init__(self) -> None:
        self.armed = False
        self.installed = False
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.armed:
            self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def named(self, prefix: str) -> list[ReadableSpan]:
        return [span for span in self.spans if span.name.startswith(prefix)]


_COLLECTOR = SpanCollector()


@pytest.fixture
def spans() -> Iterator[SpanCollector]:
    """Tracing on (sampling 1.0, in-memory), for a Haunted built after this fixture."""
    if not _COLLECTOR.installed:
        setup_tracing(make_settings(), "test", exporter=_COLLECTOR)
        _COLLECTOR.installed = True
    _COLLECTOR.spans.clear()
    _COLLECTOR.armed = True
    try:
        yield _COLLECTOR
    finally:
        _COLLECTOR.armed = False
        _COLLECTOR.spans.clear()
