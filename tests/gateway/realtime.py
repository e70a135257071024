"""What the real-time tests share: events published through the app's outbox, a
Socket.IO client that records what it receives, a server with chosen settings."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import socketio
from jose import jwt
from redis.asyncio import Redis

from events.embedded import EmbeddedBroker
from events.envelope import Envelope
from events.outbox import add_event
from haunted.runtime import Haunted
from haunted.settings import Settings
from schemas import Event, NotificationRequested
from services.notifications import NotificationView
from services.principal import Principal
from tests.conftest import (
    PG_HOST,
    PG_PORT,
    PG_USER,
    eventually,
    free_port,
    make_settings,
    pg_url,
)

# Not the suite's db 15, which each real-backend test flushes as it starts: a server
# shared by a module's tests keeps its sessions for the whole module.
REALTIME_REDIS_URL = os.environ.get("TEST_REALTIME_REDIS_URL", "redis://127.0.0.1:6379/13")


async def publish(haunted: Haunted, *events: Event) -> list[Envelope]:
    """Commits events to the app's outbox, as a service would; the relay publishes them."""
    async with haunted.db.transaction() as session:
        return [add_event(session, event) for event in events]


async def notify(haunted: Haunted, user_id: str, title: str, **fields: Any) -> Envelope:
    """Asks the notifications service to notify one user (`notification.requested`)."""
    (envelope,) = await publish(
        haunted, NotificationRequested(user_id=user_id, type="test", title=title, **fields)
    )
    return envelope


def session_id_of(token: str) -> str:
    return str(jwt.get_unverified_claims(token)["sid"])


async def inbox(haunted: Haunted, user_id: str, count: int) -> list[NotificationView]:
    """The user's notifications oldest first, once there are `count` of them."""
    principal = Principal(user_id=user_id, session_id="test")

    async def landed() -> list[NotificationView] | None:
        found = await haunted.services.notifications.notifications(principal, first=100)
        return list(reversed(found)) if len(found) >= count else None

    result: list[NotificationView] = await eventually(landed, timeout_s=20)
    return result


class Recorder:
    """A python-socketio client that records every event, in arrival order."""

    def __init__(self, *, reconnection: bool = False) -> None:
        self.sio = socketio.AsyncClient(
            reconnection=reconnection, reconnection_delay=0.1, reconnection_delay_max=0.5
        )
        self.events: list[tuple[str, Any]] = []
        self.errors: list[Any] = []
        self.disconnects: list[Any] = []
        self.connects = 0
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self.errors.append)
        self.sio.on("disconnect", self._disconnected)
        self.sio.on("connect", self._connected)

    def _record(self, event: str, data: Any = None) -> None:
        self.events.append((event, data))

    def _disconnected(self, reason: Any = None) -> None:
        self.disconnects.append(reason)

    def _connected(self) -> None:
        self.connects += 1

    async def connect(self, url: str, auth: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        await self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)

    async def try_connect(self, url: str, auth: dict[str, Any]) -> Any:
        """Connects, expecting a refusal; returns the connect_error data."""
        try:
            await self.connect(url, auth)
        except socketio.exceptions.ConnectionError:
            pass
        assert not self.sio.connected
        assert self.errors, "no connect_error received"
        return self.errors[-1]

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]

    def titles(self) -> list[str]:
        return [data["title"] for data in self.named("notification")]

    async def wait_for(self, name: str, count: int = 1, timeout_s: float = 20) -> list[Any]:
        async def arrived() -> list[Any] | None:
            found = self.named(name)
            return found if len(found) >= count else None

        result: list[Any] = await eventually(arrived, timeout_s=timeout_s)
        return result

    async def close(self) -> None:
        """Disconnects, and stops any reconnection attempts."""
        await self.sio.shutdown()


@asynccontextmanager
async def shared_settings(
    backend: str,
    migrated_template: str,
    signing_key_files: tuple[Path, Path],
    directory: Path,
    *,
    real_redis: bool = False,
) -> AsyncIterator[Settings]:
    """Settings over stores and a broker of their own, for a module's tests to share (a
    server per test costs more than most tests). `real_redis` for more than one gateway:
    they share Redis (the embedded backend's in-process one is per process)."""
    if backend == "embedded":
        path = directory / "haunted.db"
        shutil.copyfile(migrated_template, path)
        database_url = f"sqlite+aiosqlite:///{path}"
    else:
        name = f"haunted_rt_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
        database_url = pg_url(name)
    redis_url = "memory://"
    if backend != "embedded" or real_redis:
        redis_url = REALTIME_REDIS_URL
        redis = Redis.from_url(REALTIME_REDIS_URL)
        await redis.flushdb()
        await redis.aclose()
    kafka = EmbeddedBroker(free_port())
    await kafka.start()
    try:
        yield make_settings(
            database_url=database_url,
            redis_url=redis_url,
            kafka_bootstrap=kafka.bootstrap_servers,
            data_dir=directory / ".haunted",
            jwt_private_key_file=signing_key_files[0],
            jwt_public_key_file=signing_key_files[1],
        )
    finally:
        await kafka.stop()
        if backend != "embedded":
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
