"""`haunted status`, `haunted events tail` and the one line for a broker that does
not answer (haunted/status.py, haunted/tail.py, haunted/cli.py) against a real
process, broker and database, on both backends."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from haunted.cli import app
from haunted.settings import Settings
from tests.conftest import Server, eventually, free_port, register
from tests.haunted import logging_restored


async def invoke(env: dict[str, str], *args: str) -> Result:
    def run() -> Result:
        with logging_restored():
            return CliRunner().invoke(app, list(args), env=env)

    return await asyncio.to_thread(run)


def env_of(settings: Settings, server: Server) -> dict[str, str]:
    return {
        "HAUNTED_DATABASE_URL": settings.database_url,
        "HAUNTED_REDIS_URL": settings.redis_url,
        "HAUNTED_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "HAUNTED_DATA_DIR": str(settings.data_dir),
        "HAUNTED_PORT": server.url.rsplit(":", 1)[1],
        "HAUNTED_LOG_JSON": "true",
    }


async def test_status_and_tail_show_what_runs(server: Server, settings: Settings) -> None:
    env = env_of(settings, server)
    user = await register(server)

    shown = await invoke(env, "status")
    assert shown.exit_code == 0, shown.output
    for part in ("database", "outbox backlog", "gateway /healthz", "gateway /readyz", "broker"):
        assert part in shown.output
    assert "group haunted.analytics" in shown.output
    assert "dead letters" in shown.output
    assert " down " not in shown.output

    async def tailed() -> Result:
        result = await invoke(
            env, "events", "tail", "--type", "user.registered", "--from-beginning"
        )
        assert result.exit_code == 0, result.output
        assert user["user"]["id"] in result.output
        return result

    result = await eventually(tailed, timeout_s=20)
    assert "user.registered" in result.output
    assert "user.logged_in" not in result.output  # --type filters
    assert "1 events" in result.output

    unknown = await invoke(env, "events", "tail", "--topic", "nosuch")
    assert unknown.exit_code == 2
    assert "unknown topic nosuch" in unknown.output


async def test_status_says_what_is_down(tmp_path: Path) -> None:
    env = {
        "HAUNTED_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'none.db'}",
        "HAUNTED_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "HAUNTED_PORT": str(free_port()),
        "HAUNTED_DATA_DIR": str(tmp_path),
    }
    shown = await invoke(env, "status")
    assert shown.exit_code == 1, shown.output
    assert "Traceback" not in shown.output
    for part in ("gateway /healthz", "broker", "consumer lag"):
        line = next(line for line in shown.output.splitlines() if part in line)
        assert "down" in line or "unknown" in line, line


@pytest.mark.parametrize(
    "args",
    [
        ["topics", "create"],
        ["dlq", "list"],
        ["replay", "analytics"],
        ["events", "tail"],
    ],
    ids=["topics", "dlq", "replay", "tail"],
)
async def test_an_unreachable_broker_is_one_line_and_status_2(
    tmp_path: Path, args: list[str]
) -> None:
    env = {
        "HAUNTED_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "HAUNTED_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "HAUNTED_DATA_DIR": str(tmp_path),
    }
    result = await invoke(env, *args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert "Traceback" not in result.output
    said = [line for line in lines if "HAUNTED_KAFKA_BOOTSTRAP" in line]
    assert len(said) == 1, result.output
    assert "broker does not answer" in said[0]
    # Only the command's line and the replay's progress bar: no client log lines.
    assert not [line for line in lines if line.startswith("{") and json.loads(line)], lines
