"""The inputs that gave INTERNAL in the penetration test (issue 14, finding 5): each is
now a clear refusal, and the WebSocket closes with 4403 for a bad token of any shape."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from haunted.settings import Settings
from tests.conftest import Server, register, serve

TRACK = 'mutation($p: JSON) { track(name: "deep", properties: $p) }'
ACTIVE = """query($from: DateTime!, $to: DateTime!) {
  activeUsers(period: DAY, from: $from, to: $to) { users }
}"""


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[Server]:
    analytics = settings.analytics.model_copy(update={"track_rate_limit": "3/minute"})
    async with serve(settings.model_copy(update={"analytics": analytics})) as s:
        yield s


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def forged(kid: Any) -> str:
    """A token whose header carries `kid` as given (signature irrelevant: refused first)."""

    def part(data: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT', 'kid': kid})}.{part({'sub': 'x'})}.c2ln"


def code_of(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def test_deep_properties_are_refused_after_the_rate_limit(server: Server) -> None:
    token = (await register(server))["token"]
    assert code_of(await server.graphql(TRACK, {"p": nested(400)}, token)) == "BAD_USER_INPUT"
    assert await server.graphql(TRACK, {"p": nested(3)}, token) == {"data": {"track": True}}
    assert code_of(await server.graphql(TRACK, {"p": nested(400)}, token)) == "BAD_USER_INPUT"
    # The limit (3 a minute) is spent: even the deep input is now refused by the limit,
    # which runs first, before any work over the input.
    assert code_of(await server.graphql(TRACK, {"p": nested(400)}, token)) == "RATE_LIMITED"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59Z"),
        ("0001-01-01T00:00:00Z", "0001-01-02T00:00:00Z"),
    ],
)
async def test_dates_at_the_ends_of_the_calendar_are_refused(
    server: Server, start: str, end: str
) -> None:
    token = (await register(server))["token"]
    body = await server.graphql(ACTIVE, {"from": start, "to": end}, token)
    assert code_of(body) == "BAD_USER_INPUT", body


@pytest.mark.parametrize("kid", [{"a": 1}, ["k"], 7, None])
async def test_a_kid_of_any_shape_is_refused_as_unauthenticated(server: Server, kid: Any) -> None:
    body = await server.graphql("{ sessions { id } }", token=forged(kid))
    assert code_of(body) == "UNAUTHENTICATED", body
    ws = await websockets.connect(
        server.url.replace("http", "ws") + "/graphql",
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
    )
    payload = {"authorization": f"Bearer {forged(kid)}"}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    with pytest.raises(ConnectionClosed):
        while True:
            await ws.recv()
    assert ws.close_code == 4403
