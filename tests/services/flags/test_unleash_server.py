"""The flags service against a real Unleash server (unleash-server pinned in ./unleash).

The server is installed with `npm ci` on first use (node_modules stays untracked),
runs on this machine's PostgreSQL in a scratch database, and is driven through its
admin API the way an operator would: the service only ever sees its client API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from haunted.runtime import Haunted
from haunted.settings import Settings
from services.principal import Principal
from tests.conftest import PG_HOST, PG_PORT, PG_USER, _pg_admin, eventually, free_port
from tests.services.flags.conftest import build, outbox

UNLEASH_DIR = Path(__file__).parent / "unleash"
SERVER_JS = UNLEASH_DIR / "node_modules" / "unleash-server" / "dist" / "server.js"
ADMIN_TOKEN = "*:*.haunted-test-admin"
BACKEND_TOKEN = "default:development.haunted-test-backend"
MEMBER = Principal(user_id="user-1", session_id="session-1", teams={"team-1": "owner"})


def _install() -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed to run the Unleash server")
    # Install scripts are not needed to run the server (optional native ssh2, telemetry).
    command = "ci" if (UNLEASH_DIR / "package-lock.json").exists() else "install"
    result = subprocess.run(
        [npm, command, "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=UNLEASH_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not SERVER_JS.exists():
        pytest.fail(f"npm {command} of unleash-server failed:\n{result.stderr[-4000:]}")


@dataclass
class UnleashServer:
    """An Unleash server process on a free port, restartable on the same database."""

    database: str
    log_path: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    async def start(self) -> None:
        if self.process is not None:
            return
        env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}",
            "DATABASE_SSL": "false",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(self.port),
            "INIT_ADMIN_API_TOKENS": ADMIN_TOKEN,
            "INIT_BACKEND_API_TOKENS": BACKEND_TOKEN,
            "LOG_LEVEL": "warn",
            # Offline machine, and nothing to report home from a test run.
            "CHECK_VERSION": "false",
            "SEND_TELEMETRY": "false",
        }
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                "node", str(SERVER_JS), cwd=UNLEASH_DIR, env=env, stdout=log, stderr=log
            )
        deadline = asyncio.get_running_loop().time() + 60
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
            while True:
                if self.process.returncode is not None:
                    self.process = None
                    pytest.fail(f"the Unleash server exited at start:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        return
                if asyncio.get_running_loop().time() > deadline:
                    await self.stop()
                    pytest.fail(f"the Unleash server did not answer in 60 s:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()

    def admin(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=f"{self.base_url}/api/admin/projects/default/features",
            headers={"Authorization": ADMIN_TOKEN},
            timeout=10,
        )

    async def create_flag(self, name: str) -> None:
        """A release flag with a 100% flexibleRollout, on in the development environment."""
        strategy = {
            "name": "flexibleRollout",
            "parameters": {"rollout": "100", "stickiness": "userId", "groupId": name},
            "constraints": [],
        }
        async with self.admin() as admin:
            (await admin.post("", json={"name": name, "type": "release"})).raise_for_status()
            strategies = f"/{name}/environments/development/strategies"
            (await admin.post(strategies, json=strategy)).raise_for_status()
        await self.toggle(name, on=True)

    async def toggle(self, name: str, *, on: bool) -> None:
        async with self.admin() as admin:
            path = f"/{name}/environments/development/{'on' if on else 'off'}"
            (await admin.post(path)).raise_for_status()


@pytest.fixture(scope="module")
async def unleash_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[UnleashServer]:
    if not SERVER_JS.exists():
        await asyncio.to_thread(_install)
    database = f"haunted_unleash_{uuid.uuid4().hex[:12]}"
    admin = await _pg_admin()
    await admin.execute(f'CREATE DATABASE "{database}"')
    server = UnleashServer(database, tmp_path_factory.mktemp("unleash") / "server.log")
    try:
        yield server
    finally:
        await server.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


async def test_flags_follow_a_real_unleash_server(
    facades: Haunted, settings: Settings, unleash_server: UnleashServer
) -> None:
    await unleash_server.start()  # again, if another backend's run of this test stopped it
    flag = f"reports-{uuid.uuid4().hex[:8]}"  # the server outlives one run: a flag of its own
    await unleash_server.create_flag(flag)
    server_settings = settings.model_copy(
        update={
            "unleash_url": f"{unleash_server.base_url}/api",
            "unleash_api_token": SecretStr(BACKEND_TOKEN),
        }
    )
    service = build(facades, server_settings)
    await service.refresh(initial=True)
    assert await service.is_enabled(MEMBER, flag) is True
    [info] = [info for info in service.flags() if info.name == flag]
    assert info.strategies == ["flexibleRollout(rollout=100, stickiness=userId)"]

    # The server's client API caches per revision: poll until the toggle shows.
    await unleash_server.toggle(flag, on=False)
    await eventually(service.refresh)
    assert await service.is_enabled(MEMBER, flag) is False
    await unleash_server.toggle(flag, on=True)
    await eventually(service.refresh)
    assert await service.is_enabled(MEMBER, flag) is True
    assert await outbox(facades, "flag.updated") == [
        {"flag": flag, "enabled": False},
        {"flag": flag, "enabled": True},
    ]

    await unleash_server.stop()
    assert await service.refresh() is False
    assert await service.is_enabled(MEMBER, flag) is True  # the last definitions stay in effect
    cold = build(facades, server_settings)  # a new process while Unleash is down
    assert await cold.is_enabled(MEMBER, flag) is False  # nothing loaded yet
    await cold.refresh(initial=True)
    assert await cold.is_enabled(MEMBER, flag) is True  # from the Redis copy
    await service.stop()
    await cold.stop()
