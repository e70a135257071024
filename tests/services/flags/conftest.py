"""Flags fixtures: a flags file of the test's own, and a stand-in Unleash client API."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from haunted.services import build_flags
from haunted.settings import Settings
from services.flags import FlagsService
from tests.conftest import free_port

TOKEN = "default:development.test-secret"


def feature(name: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "type": "release",
        "enabled": True,
        "strategies": [{"name": "default", "parameters": {}, "constraints": []}],
        "variants": [],
    }
    return {**base, **overrides}


FEATURES = [
    feature(
        "pro-reports",
        strategies=[
            {
                "name": "flexibleRollout",
                "parameters": {"rollout": "100", "stickiness": "userId", "groupId": "pro"},
                "constraints": [{"contextName": "plan", "operator": "IN", "values": ["pro"]}],
            }
        ],
    ),
    feature("billing-tools", requiredPermission="billing:manage"),
    feature(
        "button",
        variants=[
            {
                "name": "blue",
                "weight": 500,
                "stickiness": "userId",
                "payload": {"type": "json", "value": '{"color": "blue"}'},
            },
            {"name": "green", "weight": 500, "stickiness": "userId"},
        ],
    ),
    feature("banner", enabled=False),
]


def document(features: list[dict[str, Any]]) -> str:
    return json.dumps({"version": 2, "features": features})


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags.json"
    path.write_text(document(FEATURES))
    return path


@pytest.fixture
def flags_settings(settings: Settings, flags_file: Path) -> Settings:
    flags = settings.flags.model_copy(update={"file": flags_file, "plan_cache_ttl_s": 0})
    return settings.model_copy(update={"flags": flags})


@pytest.fixture
async def flags_app(flags_settings: Settings) -> AsyncIterator[Haunted]:
    """Facades only (database and Redis), with the test's flags file."""
    app = Haunted.build(flags_settings)
    try:
        yield app
    finally:
        await app.redis.aclose()
        await app.db.dispose()


@pytest.fixture
def flags(flags_app: Haunted) -> FlagsService:
    return flags_app.services.flags


def build(app: Haunted, settings: Settings) -> FlagsService:
    """Another FlagsService on the same database and Redis, as a second process would have."""
    return build_flags(settings, app.db, app.redis)


async def outbox(app: Haunted, topic: str) -> list[dict[str, Any]]:
    async with app.db.read() as session:
        rows = (
            await session.scalars(
                select(OutboxRecord).where(OutboxRecord.topic == topic).order_by(OutboxRecord.seq)
            )
        ).all()
    return [json.loads(row.value) for row in rows]


@dataclass
class FakeUnleash:
    """Unleash's client API as the SDK sees it: GET /api/client/features with a backend token."""

    port: int
    body: str = field(default_factory=lambda: document(FEATURES))
    requests: int = 0
    stop: Callable[[], None] = lambda: None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"


@pytest.fixture
def unleash() -> Iterator[FakeUnleash]:
    state = FakeUnleash(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            if self.headers.get("Authorization") != TOKEN:
                self.send_response(401)
                self.end_headers()
                return
            if self.path != "/api/client/features":
                self.send_response(404)
                self.end_headers()
                return
            body = state.body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            server.shutdown()
            server.server_close()

    state.stop = stop
    try:
        yield state
    finally:
        stop()
