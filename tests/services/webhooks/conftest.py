"""Webhooks fixtures: local receivers (real HTTP servers on free ports) and a clock
the tests move, so the retry schedule and the disabling run in seconds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from events.db import Database
from services.principal import Principal
from services.webhooks import (
    DeliveryWorker,
    HttpDelivery,
    SecretBox,
    UrlPolicy,
    WebhooksConfig,
    WebhooksService,
)
from tests.conftest import free_port


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local endpoint. `answers` are the statuses of the first requests (then 200);
    `hang` makes it never answer (until the test ends)."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    hang: bool = False
    received: list[Received] = field(default_factory=list)
    in_progress: int = 0
    most_at_once: int = 0
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        self.in_progress += 1
        self.most_at_once = max(self.most_at_once, self.in_progress)
        try:
            if self.hang:
                await self._release.wait()
            status = self.answers.pop(0) if self.answers else 200
            return web.Response(status=status, text="x" * 100_000)  # more than is read
        finally:
            self.in_progress -= 1


Receivers = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    """`await receivers(answers=[500, 500])`: a started local endpoint."""
    runners: list[web.AppRunner] = []
    made: list[Receiver] = []

    async def make(answers: list[int] | None = None, hang: bool = False) -> Receiver:
        receiver = Receiver(answers=list(answers or []), hang=hang)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        port = free_port()
        receiver.url = f"http://127.0.0.1:{port}/hook"
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver._release.set()
    for runner in runners:
        await runner.cleanup()


TEST_POLICY = UrlPolicy(require_https=False, allow_private=True)
PROD_POLICY = UrlPolicy(require_https=True, allow_private=False)
RING = {"k1": b"\x01" * 32}


def webhooks_service(
    db: Database, clock: FakeClock, policy: UrlPolicy = TEST_POLICY, **config: object
) -> WebhooksService:
    settings = WebhooksConfig(policy=policy, poll_interval_s=0.02, **config)  # type: ignore[arg-type]
    return WebhooksService(db, SecretBox(RING), settings, clock)


def worker_for(service: WebhooksService, policy: UrlPolicy | None = None) -> DeliveryWorker:
    config = service.config
    http = HttpDelivery(
        policy or config.policy,
        timeout_s=config.timeout_s,
        max_response_bytes=config.max_response_bytes,
    )
    return DeliveryWorker(service.db, service, http)


def owner_of(team_id: str, role: str = "owner") -> Principal:
    return Principal(user_id=f"user-{team_id}", session_id="s", teams={team_id: role})


@asynccontextmanager
async def running(worker: DeliveryWorker) -> AsyncIterator[DeliveryWorker]:
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await task
