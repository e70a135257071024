"""Revocation delay: how long an open connection outlives the end of its session.

haunted: the whole app under uvicorn in this process. Each round registers a
user, opens a Socket.IO connection and a GraphQL WebSocket (graphql-transport-ws)
with its token, then POSTs `logout`; timed from just before the POST until the
Socket.IO client sees its disconnect, and until the WebSocket is closed (4403):
the outbox commit, the relay, the broker, the fan-out consumer and the hub.

baseline, in the same run: the same client's round trip for `{ me { id } }` over
HTTP (what the gateway costs anyway), so the figure reads against the machine's load.

`python -m bench.revocation [--backend embedded|real] [--rounds N]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import socketio
import websockets

from bench.common import (
    BACKENDS,
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
from haunted.runtime import Haunted

PASSWORD = "correct horse battery staple"  # noqa: S105 - the benchmark users'
UNLIMITED = "1000000/minute"
TIMEOUT_S = 15.0
REGISTER = """
mutation($email: String!, $password: String!) {
  register(email: $email, password: $password) { token }
}"""


@dataclass(frozen=True, slots=True)
class Figures:
    socketio: list[float]
    websocket: list[float]
    baseline: list[float]


async def _graphql(http: httpx.AsyncClient, query: str, variables: Any, token: str = "") -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body = response.json()
    if "errors" in body:
        raise RuntimeError(f"GraphQL refused the benchmark's request: {body['errors']}")
    return body["data"]


async def _round(url: str, http: httpx.AsyncClient) -> tuple[float, float, float]:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
    token = (await _graphql(http, REGISTER, {"email": email, "password": PASSWORD}))["register"][
        "token"
    ]
    started = time.perf_counter()
    await _graphql(http, "{ me { id } }", {}, token)
    baseline = time.perf_counter() - started

    client = socketio.AsyncClient(reconnection=False)
    ready, gone = asyncio.Event(), asyncio.Event()
    client.on("connection_ready", lambda _data: ready.set())
    client.on("disconnect", lambda *_: gone.set())
    await client.connect(url, auth={"token": token}, transports=["websocket"])
    await asyncio.wait_for(ready.wait(), TIMEOUT_S)
    ws = await websockets.connect(
        url.replace("http", "ws") + "/graphql",
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
    )
    try:
        payload = {"authorization": f"Bearer {token}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        await asyncio.wait_for(ws.recv(), TIMEOUT_S)  # connection_ack

        started = time.perf_counter()
        await _graphql(http, "mutation { logout }", {}, token)

        async def socket_closed() -> float:
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT_S)
            if ws.close_code != 4403:
                raise RuntimeError(f"the WebSocket closed with {ws.close_code}, not 4403")
            return time.perf_counter() - started

        async def socketio_gone() -> float:
            await asyncio.wait_for(gone.wait(), TIMEOUT_S)
            return time.perf_counter() - started

        closed, disconnected = await asyncio.gather(socket_closed(), socketio_gone())
    finally:
        await ws.close()
        await client.disconnect()
    return disconnected, closed, baseline


async def run(backend: Backend, rounds: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="haunted-bench-") as directory:
        async with stores(backend, Path(directory)) as found, embedded_broker() as tansu:
            port = free_port()
            settings = gateway_settings(
                found,
                tansu,
                Path(directory),
                port,
                log_json=False,
                bcrypt_rounds=4,
                auth_rate_limit_per_ip=UNLIMITED,
                auth_rate_limit_per_account=UNLIMITED,
            )
            async with (
                serving(Haunted.build(settings).asgi_app(), port) as url,
                httpx.AsyncClient(base_url=url, timeout=TIMEOUT_S) as http,
            ):
                figures = Figures([], [], [])
                for index in range(rounds + 3):  # three warm-up rounds
                    sio, ws, base = await _round(url, http)
                    if index >= 3:
                        figures.socketio.append(sio)
                        figures.websocket.append(ws)
                        figures.baseline.append(base)
                return figures


def main(backend: Backend, rounds: int) -> None:
    quiet_logs()
    figures = asyncio.run(run(backend, rounds))
    heading(f"Revocation delay, logout to connection ended ({backend}, {rounds} rounds)")
    for label, values in (
        ("Socket.IO disconnected", figures.socketio),
        ("GraphQL WebSocket closed (4403)", figures.websocket),
        ("baseline: { me } over HTTP", figures.baseline),
    ):
        p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
        line(label, f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.revocation")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="embedded")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    for chosen in BACKENDS if args.backend == "both" else (args.backend,):
        main(chosen, args.rounds)
