"""docker-compose.yml and infra/docker/Dockerfile, checked without a Docker engine:
every HAUNTED_* variable is a setting, every command a real `haunted` command, and
the production environment compose gives the processes passes Settings."""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from haunted import migrations
from haunted.cli import app
from haunted.keyring import load_pii_keys
from haunted.keys import load_signing_key
from haunted.services import NAMES
from haunted.settings import Settings
from haunted.settings import variables as setting_variables
from tests.conftest import serve_worker

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PREFIX = "HAUNTED_"
KEYS_DIR = "/var/lib/haunted-keys"

# compose's ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@functools.cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def haunted_services() -> dict[str, dict[str, Any]]:
    """The services that run the image of infra/docker/Dockerfile."""
    found = {}
    for name, service in compose()["services"].items():
        build = service.get("build") or {}
        if (ROOT / build.get("context", ".") / build.get("dockerfile", "")).resolve() == DOCKERFILE:
            found[name] = service
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {name: str(value) for name, value in raw.items()}


def interpolate(value: str, host: dict[str, str]) -> str:
    """What compose does with ${...} given the host's variables (or .env)."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        present = host.get(name)
        if op and op.endswith("?") and not present:
            raise AssertionError(f"compose would stop: {name}: {arg}")
        if op and op.endswith("-") and not present:
            return str(arg)
        return present or ""

    return INTERPOLATION.sub(replace, value)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_compose_parses_and_runs_the_whole_stack() -> None:
    services = compose()["services"]
    images = {name: str(service.get("image", "")) for name, service in services.items()}
    assert images["kafka"].startswith("apache/kafka:")
    assert images["postgres"] == "postgres:15"
    assert images["redis"] == "redis:7"
    assert images["unleash"].startswith("unleashorg/unleash-server:")
    assert set(haunted_services()) == {
        "keys",
        "unleash-seed",
        "migrate",
        "topics",
        "gateway",
        "worker",
        "backup",
        "base-backup",
    }
    web = services["web"]["build"]
    assert (
        web["dockerfile"] == "infra/docker/web.Dockerfile"
        and "3000:3000" in services["web"]["ports"]
    )


def test_docker_compose_validates_the_file(tmp_path: Path) -> None:
    """Debian's docker-compose 1.29 checks the file without a daemon (.ci/run installs it)."""
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: apt-get install -y docker-compose"
    done = subprocess.run(
        [binary, "-f", str(COMPOSE), "config", "--quiet"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    broken = tmp_path / "docker-compose.yml"  # the check can fail
    broken.write_text(COMPOSE.read_text().replace("condition: service_healthy", "condition: 7", 1))
    done = subprocess.run([binary, "-f", str(broken), "config", "--quiet"], capture_output=True)
    assert done.returncode != 0


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    assert isinstance(command, list) and command
    return [str(part) for part in command]


def test_postgres_archives_its_wal_and_redis_persists_both_ways() -> None:
    services = compose()["services"]
    postgres = _command(services["postgres"])
    settings = dict(arg.split("=", 1) for arg in postgres if "=" in arg)
    assert settings["wal_level"] == "replica" and settings["archive_mode"] == "on"
    archive = "/var/lib/postgresql/archive"
    assert f"cp %p {archive}/%f" in settings["archive_command"]
    assert int(settings["archive_timeout"]) > 0
    assert f"postgres-wal:{archive}" in services["postgres"]["volumes"]
    assert _command(services["volumes"])[-1] == archive  # made the postgres user's
    redis = _command(services["redis"])
    assert redis[redis.index("--appendonly") + 1] == "yes"
    assert redis[redis.index("--save") + 1]  # RDB snapshots too
    assert "redis-data:/data" in services["redis"]["volumes"]


def test_keys_and_flags_come_from_one_shot_services() -> None:
    services = compose()["services"]
    assert _command(services["keys"]) == ["keys", "init", KEYS_DIR]
    assert f"keys:{KEYS_DIR}" in services["keys"]["volumes"]
    for name in ("migrate", "topics", "gateway", "worker"):
        assert f"keys:{KEYS_DIR}:ro" in services[name]["volumes"], name
    done = "service_completed_successfully"
    assert services["migrate"]["depends_on"]["keys"]["condition"] == done
    assert services["topics"]["depends_on"]["keys"]["condition"] == done
    for name in ("gateway", "worker"):
        assert services[name]["depends_on"]["unleash-seed"]["condition"] == done
    seed = services["unleash-seed"]
    assert seed["entrypoint"] == ["python", "infra/docker/seed_unleash.py"]
    args = _command(seed)
    assert (ROOT / args[args.index("--file") + 1]).exists()
    token = args[args.index("--token") + 1]
    assert token in environment(services["unleash"])["INIT_ADMIN_API_TOKENS"].split(",")
    assert "monitoring" in COMPOSE.read_text()  # the place left for that profile
    flags = json.loads((ROOT / "infra" / "flags.json").read_text())["features"]
    required = {f["name"]: f["requiredPermission"] for f in flags if "requiredPermission" in f}
    for name in ("gateway", "worker"):
        env = environment(services[name])
        assert json.loads(env["HAUNTED_FLAGS_REQUIRED_PERMISSIONS"]) == required


def test_kafka_is_one_kraft_node() -> None:
    kafka = environment(compose()["services"]["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{kafka['KAFKA_NODE_ID']}@kafka:9093"
    assert kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


def test_every_haunted_variable_is_a_setting() -> None:
    variables = {
        name for service in compose()["services"].values() for name in environment(service)
    }
    variables |= {
        name
        for keyword, rest in dockerfile_instructions()
        if keyword == "ENV"
        for name in re.findall(r"(\w+)=", rest)
    }
    haunted = {name for name in variables if name.startswith(PREFIX)}
    assert {"HAUNTED_ENV", "HAUNTED_DATABASE_URL", "HAUNTED_HOST"} <= haunted
    unknown = haunted - setting_variables()
    assert not unknown, f"not fields of Settings: {sorted(unknown)}"


def _help(args: list[str]) -> int:
    return CliRunner().invoke(app, [*args, "--help"]).exit_code


def test_every_service_command_is_a_haunted_command() -> None:
    assert _help(["nosuchcommand"]) != 0  # the check below can fail
    commands = {}
    for name, service in haunted_services().items():
        if "entrypoint" in service:  # a script of the image, not `haunted`
            continue
        command = service.get("command")
        assert isinstance(command, list) and command, f"{name}: command must be a list"
        commands[name] = command
        assert _help(command) == 0, f"{name}: `haunted {' '.join(command)}` does not exist"
    assert commands["migrate"] == ["migrate"]
    assert commands["topics"] == ["topics", "create"]
    assert commands["gateway"] == ["serve"]
    assert commands["worker"][0] == "worker"
    assert commands["backup"][0] == "backup" and "--keep" in commands["backup"]
    assert "--physical" in commands["base-backup"]
    assert set(commands["worker"][1:]) <= set(NAMES)


def test_the_order_of_start() -> None:
    services = compose()["services"]
    for name in ("gateway", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["topics"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("kafka", "postgres", "redis", "unleash-db", "unleash"):
        assert services[name]["healthcheck"]["test"], name
    assert "8000:8000" in services["gateway"]["ports"]


def test_the_servers_named_are_the_servers_of_the_stack() -> None:
    services = compose()["services"]
    postgres = environment(services["postgres"])
    unleash = environment(services["unleash"])
    kafka = environment(services["kafka"])
    for service in haunted_services().values():
        env = environment(service)
        if not env:  # the one-shot keys and seeding services need no servers
            continue
        assert env["HAUNTED_DATABASE_URL"] == (
            f"postgresql+asyncpg://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
            f"@postgres:5432/{postgres['POSTGRES_DB']}"
        )
        assert env["HAUNTED_REDIS_URL"].startswith("redis://redis:6379/")
        assert (
            f"PLAINTEXT://{env['HAUNTED_KAFKA_BOOTSTRAP']}" == kafka["KAFKA_ADVERTISED_LISTENERS"]
        )
        assert env["HAUNTED_UNLEASH_URL"] == "http://unleash:4242/api"
        assert env["HAUNTED_UNLEASH_API_TOKEN"] in unleash["INIT_CLIENT_API_TOKENS"].split(",")


@pytest.mark.parametrize("name", ["migrate", "topics", "gateway", "worker", "backup"])
def test_the_environment_compose_gives_passes_settings_in_prod(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With the keys volume as the `keys` service leaves it (`haunted keys init`)."""
    service = haunted_services()[name]
    volume = tmp_path / "keys-volume"
    made = CliRunner().invoke(app, ["keys", "init", str(volume)])
    assert made.exit_code == 0, made.output
    monkeypatch.chdir(tmp_path)
    for variable, raw in environment(service).items():
        value = interpolate(raw, {})
        if value.startswith(KEYS_DIR + "/"):
            value = str(volume / value.removeprefix(KEYS_DIR + "/"))
        monkeypatch.setenv(variable, value)

    settings = Settings(_env_file=None)
    assert settings.env == "prod"
    assert load_signing_key(settings).private_pem == (volume / "jwt-private.pem").read_bytes()
    ring, lookup = load_pii_keys(settings)
    assert ring and len(lookup) == 32
    if name == "gateway":
        assert settings.host == "0.0.0.0"
        assert f"{settings.port}:{settings.port}" in service["ports"]


def test_the_image() -> None:
    instructions = dockerfile_instructions()
    keywords = [keyword for keyword, _ in instructions]
    values = dict(instructions)  # the last of each
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert json.loads(values["ENTRYPOINT"]) == ["haunted"]
    assert json.loads(values["CMD"]) == ["serve"]
    assert values["USER"] not in ("root", "0")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert values["EXPOSE"] == "8000"
    assert "/healthz" in values["HEALTHCHECK"]
    assert "HAUNTED_HOST=0.0.0.0" in " ".join(v for k, v in instructions if k == "ENV")
    runs = [value for keyword, value in instructions if keyword == "RUN"]
    assert any("-r requirements.lock" in run for run in runs)
    assert any("--no-deps -e ." in run for run in runs)  # editable: infra/migrations resolves
    assert ("COPY", ". .") in instructions


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes for pattern in patterns)


def test_the_build_context_has_the_code_and_no_secrets() -> None:
    patterns = [
        line.strip().removeprefix("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert not any(p.startswith("!") for p in patterns)  # keeps _ignored simple and right
    for needed in ("pyproject.toml", "requirements.lock", "haunted/cli.py", "infra/migrations"):
        assert (ROOT / needed).exists(), needed
        assert not _ignored(needed, patterns), f"{needed} is left out of the image"
    assert migrations.MIGRATIONS_DIR == ROOT / "infra" / "migrations"
    for secret in ("infra/keys/jwt-private.pem", ".env", ".haunted/keys/jwt-private.pem", ".venv"):
        assert _ignored(secret, patterns), f"{secret} would be sent to the build"


async def test_the_worker_is_checked_on_its_own_healthz(settings: Settings) -> None:
    """The compose worker's healthcheck, run as compose runs it, passes against a real
    `haunted worker`'s probes and fails once they are gone; it asks the port the worker
    serves on and Prometheus scrapes."""
    worker = compose()["services"]["worker"]
    check = worker["healthcheck"]
    assert not check.get("disable") and check["test"][:2] == ["CMD", "python"]
    port = environment(worker)["HAUNTED_WORKER_PORT"]
    prometheus = yaml.safe_load((ROOT / "infra" / "monitoring" / "prometheus.yml").read_text())
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "haunted-worker"]
    assert str(job["dns_sd_configs"][0]["port"]) == port
    command = [sys.executable, *check["test"][2:]]  # the image's python is the only change
    env = {**os.environ, "HAUNTED_WORKER_PORT": str(settings.worker_port)}

    def run_check() -> int:
        return subprocess.run(command, env=env, capture_output=True, timeout=30).returncode

    async with serve_worker(settings, workers=()):
        assert await asyncio.to_thread(run_check) == 0
    assert await asyncio.to_thread(run_check) != 0
