"""Login-to-push latency vs a raw python-socketio emit, in the same run.

haunted: the whole app (`Haunted.build(settings).asgi_app()`) under uvicorn
in this process. One user is registered and a Socket.IO client connects with
its token; each login is timed from just before the `login` mutation is
POSTed until the client receives the `user.logged_in` event whose
data.session_id is the new session's (the token's `sid` claim): GraphQL,
bcrypt, the outbox commit, the relay, the broker, the fan-out consumer and
the Socket.IO emit.

baseline: a bare socketio.AsyncServer under uvicorn that emits the same kind
of event when it receives an HTTP POST, measured the same way.

Logins run one after the other; both sides get a few untimed warm-up rounds.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import socketio
from jose import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.common import (
    Backend,
    embedded_broker,
    free_port,
    gateway_settings,
    heading,
    line,
    percentile,
    quiet_logs,
    serving,
    stores,
)
from bench.summary import goal
from haunted.runtime import Haunted

BCRYPT_ROUNDS = 4
UNLIMITED = "1000000/minute"
EVENT = "user.logged_in"
WARM_UP = 20
PUSH_TIMEOUT_S = 10.0
PASSWORD = "correct horse battery staple"  # noqa: S105 - the benchmark user's

REGISTER = """
mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token user { id email } }
}"""

LOGIN = """
mutation($email: String!, $password: String!) {
  login(email: $email, password: $password) { token }
}"""

# One round: POSTs whatever makes the server push; returns the session id to wait for.
Round = Callable[[httpx.AsyncClient], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Latencies:
    """Seconds from the POST to the push, and to the HTTP response."""

    push: list[float]
    response: list[float]

    def p(self, q: int) -> float:
        return percentile(self.push, q)


@dataclass(frozen=True, slots=True)
class LoginToPushResult:
    backend: Backend
    logins: int
    haunted: Latencies
    raw: Latencies

    @property
    def ratio_p50(self) -> float:
        return self.haunted.p(50) / self.raw.p(50)

    @property
    def ratio_p99(self) -> float:
        return self.haunted.p(99) / self.raw.p(99)


class Pushes:
    """The pushed events' arrival times, by session id (the push may beat the response)."""

    def __init__(self) -> None:
        self._arrivals: dict[str, asyncio.Future[float]] = {}

    def _future(self, session_id: str) -> asyncio.Future[float]:
        return self._arrivals.setdefault(session_id, asyncio.get_running_loop().create_future())

    def on_event(self, payload: dict[str, Any]) -> None:
        future = self._future(payload["data"]["session_id"])
        if not future.done():
            future.set_result(time.perf_counter())

    async def arrival(self, session_id: str) -> float:
        arrived = await asyncio.wait_for(self._future(session_id), PUSH_TIMEOUT_S)
        del self._arrivals[session_id]
        return arrived


async def _measure(
    url: str, auth: dict[str, str] | None, one_round: Round, rounds: int
) -> Latencies:
    pushes = Pushes()
    client = socketio.AsyncClient(reconnection=False)
    client.on(EVENT, pushes.on_event)
    ready = asyncio.Event()
    client.on("connection_ready", lambda _data: ready.set())
    await client.connect(url, auth=auth, transports=["websocket"])
    push: list[float] = []
    response: list[float] = []
    try:
        if auth is not None:  # Haunted says when the rooms are joined
            await asyncio.wait_for(ready.wait(), PUSH_TIMEOUT_S)
        async with httpx.AsyncClient(base_url=url, timeout=PUSH_TIMEOUT_S) as http:
            for index in range(WARM_UP + rounds):
                started = time.perf_counter()
                session_id = await one_round(http)
                answered = time.perf_counter()
                arrived = await pushes.arrival(session_id)
                if index >= WARM_UP:
                    push.append(arrived - started)
                    response.append(answered - started)
    finally:
        await client.disconnect()
    return Latencies(push, response)


async def _graphql(http: httpx.AsyncClient, query: str, variables: dict[str, str]) -> Any:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    body = response.json()
    if "errors" in body:
        raise RuntimeError(f"GraphQL refused the benchmark's request: {body['errors']}")
    return body["data"]


async def _haunted(backend: Backend, logins: int) -> Latencies:
    with tempfile.TemporaryDirectory(prefix="haunted-bench-") as directory:
        async with stores(backend, Path(directory)) as found, embedded_broker() as tansu:
            port = free_port()
            settings = gateway_settings(
                found,
                tansu,
                Path(directory),
                port,
                log_json=False,
                bcrypt_rounds=BCRYPT_ROUNDS,
                # One account logging in back to back is the benchmark, not an attack.
                auth_rate_limit_per_ip=UNLIMITED,
                auth_rate_limit_per_account=UNLIMITED,
            )
            async with serving(Haunted.build(settings).asgi_app(), port) as url:
                email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
                async with httpx.AsyncClient(base_url=url, timeout=PUSH_TIMEOUT_S) as http:
                    registered = await _graphql(
                        http, REGISTER, {"email": email, "password": PASSWORD}
                    )

                async def login(http: httpx.AsyncClient) -> str:
                    data = await _graphql(http, LOGIN, {"email": email, "password": PASSWORD})
                    claims = jwt.get_unverified_claims(data["login"]["token"])
                    return str(claims["sid"])

                return await _measure(
                    url, {"token": registered["register"]["token"]}, login, logins
                )


def raw_socketio_app() -> socketio.ASGIApp:
    """A bare Socket.IO server: POST /emit {session_id} emits one event to every client."""
    sio = socketio.AsyncServer(async_mode="asgi", logger=False, engineio_logger=False)

    async def emit(request: Request) -> JSONResponse:
        session_id = (await request.json())["session_id"]
        await sio.emit(EVENT, {"type": EVENT, "data": {"session_id": session_id}})
        return JSONResponse({"ok": True})

    return socketio.ASGIApp(sio, Starlette(routes=[Route("/emit", emit, methods=["POST"])]))


async def _raw(rounds: int) -> Latencies:
    async def emit(http: httpx.AsyncClient) -> str:
        session_id = str(uuid.uuid4())
        (await http.post("/emit", json={"session_id": session_id})).raise_for_status()
        return session_id

    port = free_port()
    async with serving(raw_socketio_app(), port) as url:
        return await _measure(url, None, emit, rounds)


async def run(backend: Backend, logins: int) -> LoginToPushResult:
    raw = await _raw(logins)
    haunted = await _haunted(backend, logins)
    result = LoginToPushResult(backend, logins, haunted, raw)
    _print(result)
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:>8.2f} ms"


def _print(result: LoginToPushResult) -> None:
    heading(f"login-to-push latency [{result.backend}] ({result.logins:,} logins, one at a time)")
    print(f"  bcrypt rounds lowered to {BCRYPT_ROUNDS} for this benchmark")
    print(f"  login rate limits raised to {UNLIMITED} for this benchmark")
    for label, figures in (("haunted login -> push", result.haunted), ("raw socketio", result.raw)):
        line(f"{label} p50 / p99 / max", " / ".join(_ms(v) for v in _summary(figures)))
    line("haunted login response p50", _ms(percentile(result.haunted.response, 50)))
    line("ratio haunted/raw p50", f"{result.ratio_p50:>8.1f}")
    line("ratio haunted/raw p99", f"{result.ratio_p99:>8.1f}")
    raw = f"{result.backend}; raw emit p50 {result.raw.p(50) * 1000:.1f} ms"
    goal(
        "login → Socket.IO push p50",
        raw,
        result.haunted.p(50) * 1000,
        20,
        at_most=True,
        unit=" ms",
    )
    goal(
        "login → Socket.IO push p99",
        raw,
        result.haunted.p(99) * 1000,
        50,
        at_most=True,
        unit=" ms",
    )


def _summary(figures: Latencies) -> tuple[float, float, float]:
    return figures.p(50), figures.p(99), max(figures.push)


def main(backend: Backend, logins: int) -> LoginToPushResult:
    quiet_logs()
    return asyncio.run(run(backend, logins))
