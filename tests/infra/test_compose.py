"""docker-compose.yml and infra/docker/Dockerfile, checked without a Docker engine:
every HAUNTED_* variable is a setting, every command a real `haunted` command, and
the production environment compose gives the processes passes Settings."""

from __future__ import annotations

import base64
import fnmatch
import functools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from haunted import migrations
from haunted.cli import app
from haunted.keys import load_signing_key
from haunted.services import NAMES
from haunted.settings import Settings
from services.auth import new_key_ring_spec

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "infra" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PREFIX = "HAUNTED_"
SECRETS_DIR = "/run/secrets/"

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
    assert set(haunted_services()) == {"migrate", "topics", "gateway", "worker"}


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
    unknown = {
        name for name in haunted if name.removeprefix(PREFIX).lower() not in Settings.model_fields
    }
    assert not unknown, f"not fields of Settings: {sorted(unknown)}"


def _help(args: list[str]) -> int:
    return CliRunner().invoke(app, [*args, "--help"]).exit_code


def test_every_service_command_is_a_haunted_command() -> None:
    assert _help(["nosuchcommand"]) != 0  # the check below can fail
    commands = {}
    for name, service in haunted_services().items():
        command = service.get("command")
        assert isinstance(command, list) and command, f"{name}: command must be a list"
        commands[name] = command
        assert _help(command) == 0, f"{name}: `haunted {' '.join(command)}` does not exist"
    assert commands["migrate"] == ["migrate"]
    assert commands["topics"] == ["topics", "create"]
    assert commands["gateway"] == ["serve"]
    assert commands["worker"][0] == "worker"
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


@pytest.mark.parametrize("name", ["migrate", "topics", "gateway", "worker"])
def test_the_environment_compose_gives_passes_settings_in_prod(
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    signing_key_files: tuple[Path, Path],
) -> None:
    service = haunted_services()[name]
    top_level_secrets = compose()["secrets"]
    host = {  # what the operator puts in .env, as the comment at the top says
        "HAUNTED_PII_ENCRYPTION_KEYS": new_key_ring_spec(),
        "HAUNTED_PII_LOOKUP_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    mounted = {"jwt-private.pem": signing_key_files[0], "jwt-public.pem": signing_key_files[1]}
    monkeypatch.chdir(tmp_path)
    for variable, raw in environment(service).items():
        value = interpolate(raw, host)
        if value.startswith(SECRETS_DIR):  # a compose secret: stand in its file
            secret = value.removeprefix(SECRETS_DIR)
            assert secret in service["secrets"], f"{variable}: {secret} is not mounted"
            source = Path(top_level_secrets[secret]["file"])
            assert source.parent == Path("infra/keys"), source
            value = str(mounted[source.name])
        monkeypatch.setenv(variable, value)

    settings = Settings(_env_file=None)
    assert settings.env == "prod"
    assert load_signing_key(settings).private_pem == signing_key_files[0].read_bytes()
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
