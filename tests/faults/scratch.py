"""Scratch PostgreSQL and Redis servers a fault test may stop and start at will.

The machine's own servers are shared by every suite and must never stop, so a
fault test starts its own on free ports: PostgreSQL with initdb/pg_ctl (as the
postgres user when the tests run as root, which PostgreSQL refuses), Redis
with redis-server. Both keep their data across a stop and start, as a real
outage would.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from tests.conftest import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or str(PG_BIN / name)
    assert Path(found).exists(), f"{name} is not installed (PostgreSQL 15 server binaries)"
    return found


class ScratchPostgres:
    """A PostgreSQL cluster of its own in a fresh temporary directory, on a free port
    (not under pytest's tmp_path: the postgres user may not enter root's)."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="haunted-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0

    def url(self, database: str = "haunted", driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    async def create(self, database: str = "haunted") -> None:
        if self._as_postgres:
            shutil.chown(self.directory, "postgres")
        await asyncio.to_thread(
            self._run,
            _pg_bin("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-N",
            "-E",
            "UTF8",
        )
        await self.start()
        connection = await asyncpg.connect(
            host="127.0.0.1", port=self.port, user="postgres", database="postgres"
        )
        try:
            await connection.execute(f'CREATE DATABASE "{database}"')
        finally:
            await connection.close()

    async def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c max_connections=200"
        )
        await asyncio.to_thread(
            self._run,
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "postgres.log"),
            "-w",
            "start",
        )

    async def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session (clients see their connections cut);
        `immediate` is a crash."""
        await asyncio.to_thread(
            self._run, _pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"
        )

    async def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            await self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class ScratchRedis:
    """A redis-server of its own on a free port (data kept across stop and start
    by an append-only file)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    await client.ping()
                    return
                except OSError:
                    await asyncio.sleep(0.02)
                except Exception as error:  # redis' ConnectionError is not an OSError
                    if "Connection" not in type(error).__name__:
                        raise
                    await asyncio.sleep(0.02)
            raise AssertionError(f"redis-server did not answer on port {self.port}")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            await self._process.wait()
        self._process = None


def freeze(pid: int) -> None:
    """Stops a process dead (an unresponsive broker: connections open, no answers)."""
    os.kill(pid, signal.SIGSTOP)


def thaw(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)
