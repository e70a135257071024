"""haunted/cli.py: the `haunted` command of runtime.md.

The exit statuses and `haunted dev` run the installed console script in a clean
environment, as a person would; the other commands run the same typer app in
process (a subprocess mostly costs its imports).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner, Result

import haunted
from events.embedded import EmbeddedBroker, port_is_free
from haunted import migrations
from haunted.cli import app
from schemas import CATALOG
from tests.conftest import PASSWORD, REGISTER, free_port
from tests.haunted import fresh_postgres_database, logging_restored, table_names

HAUNTED = Path(sys.executable).with_name("haunted")  # the console script of this venv
ROOT = Path(haunted.__file__).resolve().parent.parent
EVERY_TOPIC = set(CATALOG) | {topic + ".dlq" for topic in CATALOG}

Invoke = Callable[..., Awaitable[Result]]


def clean_env(home: Path, **variables: str) -> dict[str, str]:
    """No HAUNTED_* but the given ones; the code under test is this checkout's."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        **variables,
    }


def embedded_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The embedded defaults, with every file in tmp_path and every port free."""
    data = tmp_path / "data"
    defaults = {
        "HAUNTED_PORT": str(free_port()),
        "HAUNTED_EMBEDDED_KAFKA_PORT": str(free_port()),
        "HAUNTED_MAIL_CATCHER_PORT": str(free_port()),
        "HAUNTED_WORKER_PORT": str(free_port()),
        "HAUNTED_DATA_DIR": str(data),
        "HAUNTED_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'haunted.db'}",
        "HAUNTED_LOG_JSON": "true",
        # Fast hashing and fast group joins, as tests.conftest.make_settings.
        "HAUNTED_BCRYPT_ROUNDS": "4",
        "HAUNTED_KAFKA_SESSION_TIMEOUT_MS": "1000",
        "HAUNTED_KAFKA_HEARTBEAT_INTERVAL_MS": "200",
    }
    return clean_env(tmp_path, **{**defaults, **variables})


def run_haunted(
    *args: str, env: dict[str, str], cwd: Path, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HAUNTED), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def children(pid: int) -> dict[int, str]:
    """The child processes of pid and their command lines (Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = stat.with_name("cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # it exited meanwhile
        if int(fields[1]) == pid:
            found[int(stat.parent.name)] = cmdline
    return found


def is_running(pid: int) -> bool:
    """False once the process is gone or a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Invoke]:
    """Runs `haunted ARGS` in process, in a thread (each command runs its own event
    loop), from tmp_path (no developer's .env); logging is put back afterwards."""
    monkeypatch.chdir(tmp_path)

    async def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        def run() -> Result:
            return CliRunner().invoke(app, list(args), env=env)

        return await asyncio.to_thread(run)

    with logging_restored():
        yield invoke


# The exit statuses, through the installed console script.


@pytest.mark.parametrize(
    ("args", "variables", "named"),
    [
        (["serve"], {"HAUNTED_PORT": "notaport"}, "HAUNTED_PORT"),
        (["serve"], {"HAUNTED_ENV": "prod"}, "HAUNTED_JWT_PRIVATE_KEY_FILE"),
        (["worker", "nosuchservice"], {}, "nosuchservice"),
    ],
    ids=["bad-port", "prod-without-keys", "unknown-service"],
)
def test_bad_configuration_is_one_line_and_status_2(
    tmp_path: Path, args: list[str], variables: dict[str, str], named: str
) -> None:
    result = run_haunted(*args, env=clean_env(tmp_path, **variables), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "variable", ["HAUNTED_EMBEDDED_KAFKA_PORT", "HAUNTED_PORT", "HAUNTED_MAIL_CATCHER_PORT"]
)
def test_dev_refuses_a_taken_port(tmp_path: Path, variable: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = embedded_env(tmp_path, **{variable: str(port)})
        result = run_haunted("dev", env=env, cwd=tmp_path, timeout_s=60)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(port) in lines[0]
    assert variable in lines[0]


def test_dev_serves_and_stops_with_its_broker(tmp_path: Path) -> None:
    env = embedded_env(tmp_path)
    url = f"http://127.0.0.1:{env['HAUNTED_PORT']}"
    broker_port = int(env["HAUNTED_EMBEDDED_KAFKA_PORT"])
    log = tmp_path / "dev.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(HAUNTED), "dev"], env=env, cwd=tmp_path, stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=url, timeout=5) as client:
            while True:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "not ready in 60s:\n" + log.read_text()
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            brokers = [pid for pid, cmd in children(process.pid).items() if "tansu" in cmd]
            assert len(brokers) == 1, children(process.pid)

            response = client.post(
                "/graphql",
                json={
                    "query": REGISTER,
                    "variables": {"email": "dev@example.com", "password": PASSWORD},
                },
            )
            body = response.json()
            assert "errors" not in body, body
            token = body["data"]["register"]["token"]
            assert isinstance(token, str) and token.count(".") == 2

            # Mail goes to the embedded catcher: listed at /dev/mail and by `haunted mail list`.
            client.post(
                "/graphql",
                json={"query": 'mutation { requestPasswordReset(email: "dev@example.com") }'},
            )
            while "Reset your password" not in (page := client.get("/dev/mail")).text:
                assert time.monotonic() < deadline + 30, "no mail caught:\n" + log.read_text()
                time.sleep(0.1)
            assert page.headers["content-type"].startswith("text/html")
            assert "dev@example.com" in page.text
            # Every URL at the start, and the instance file other commands read.
            printed = log.read_text()
            for label in ("GraphQL:", "GraphiQL:", "Socket.IO:", "Metrics:", "Mail catcher:"):
                assert label in printed, printed
            assert f"{url}/graphql" in printed
            assert f"127.0.0.1:{broker_port}" in printed
        # No port, broker or database given: `haunted status` takes them from the
        # instance file in the data dir, run from a folder of its own.
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        found = {
            name: value
            for name, value in env.items()
            if name not in ("HAUNTED_PORT", "HAUNTED_EMBEDDED_KAFKA_PORT", "HAUNTED_DATABASE_URL")
        }
        shown = run_haunted("status", env=found, cwd=elsewhere)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        for part in ("gateway /readyz", "broker"):  # the instance's ports, found
            line = next(line for line in shown.stdout.splitlines() if part in line)
            assert "ok up" in line, shown.stdout
        listed = run_haunted("mail", "list", env=env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert "Reset your password" in listed.stdout
        assert "dev@example.com" in listed.stdout
    finally:
        status = stop(process)

    assert status == 0, log.read_text()
    assert not is_running(brokers[0])
    assert port_is_free("127.0.0.1", broker_port)
    assert (tmp_path / "data" / "haunted.db").exists()


async def test_worker_stops_cleanly_on_sigterm(tmp_path: Path, kafka: EmbeddedBroker) -> None:
    env = embedded_env(tmp_path, HAUNTED_KAFKA_BOOTSTRAP=kafka.bootstrap_servers)
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(HAUNTED), "worker", "analytics"],
            env=env,
            cwd=tmp_path,
            stdout=output,
            stderr=output,
        )
    try:
        deadline = time.monotonic() + 60
        while "haunted started" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "not started in 60s:\n" + log.read_text()
            await asyncio.sleep(0.1)
    finally:
        status = await asyncio.to_thread(stop, process)
    assert status == 0, log.read_text()


# The other commands, in process.


async def test_docs_asyncapi_names_every_topic_and_dead_letter(cli: Invoke) -> None:
    result = await cli("docs", "asyncapi")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["asyncapi"].startswith("3.")
    addresses = [channel["address"] for channel in document["channels"].values()]
    assert sorted(addresses) == sorted(EVERY_TOPIC)


async def test_docs_asyncapi_is_the_same_whatever_the_settings(cli: Invoke) -> None:
    """The document describes the catalog, not this process: ports and brokers change nothing."""
    first = await cli("docs", "asyncapi", env={"HAUNTED_EMBEDDED_KAFKA_PORT": str(free_port())})
    second = await cli(
        "docs",
        "asyncapi",
        env={"HAUNTED_KAFKA_BOOTSTRAP": "kafka-1:9092", "HAUNTED_PORT": str(free_port())},
    )
    assert first.exit_code == second.exit_code == 0, first.output + second.output
    assert first.stdout == second.stdout


async def broker_topics(kafka: EmbeddedBroker) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap_servers)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_topics_create_is_complete_and_idempotent(cli: Invoke, kafka: EmbeddedBroker) -> None:
    env = {"HAUNTED_KAFKA_BOOTSTRAP": kafka.bootstrap_servers}
    assert not EVERY_TOPIC & await broker_topics(kafka)

    first = await cli("topics", "create", env=env)
    assert first.exit_code == 0, first.output
    assert f"{len(EVERY_TOPIC)} topics created, 0 existed" in first.stderr
    created = await broker_topics(kafka)
    assert created >= EVERY_TOPIC

    again = await cli("topics", "create", env=env)
    assert again.exit_code == 0, again.output
    assert f"0 topics created, {len(EVERY_TOPIC)} existed" in again.stderr
    assert await broker_topics(kafka) == created


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        # A directory that does not exist yet: `haunted migrate` creates it.
        yield f"sqlite+aiosqlite:///{tmp_path / 'new' / 'haunted.db'}"
        return
    async with fresh_postgres_database() as url:
        yield url


async def test_migrate_creates_the_schema_and_is_idempotent(
    cli: Invoke, empty_database: str
) -> None:
    env = {"HAUNTED_DATABASE_URL": empty_database}
    first = await cli("migrate", env=env)
    assert first.exit_code == 0, first.output
    tables = await table_names(empty_database)
    assert {"alembic_version", "outbox", "processed_events"} <= tables

    again = await cli("migrate", env=env)
    assert again.exit_code == 0, again.output
    assert "up to date" in again.stderr
    assert await table_names(empty_database) == tables
    assert migrations.MIGRATIONS_DIR == ROOT / "infra" / "migrations"
