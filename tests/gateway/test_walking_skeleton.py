"""The walking skeleton, end to end over real sockets: register and login through
GraphQL, the events through the outbox and Kafka, into analytics, and pushed to a
Socket.IO client and a GraphQL subscription."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import socketio
import websockets
from sqlalchemy import select

from services.analytics.models import AnalyticsEvent
from tests.conftest import LOGIN, PASSWORD, Server, eventually, register

EVENTS_SUBSCRIPTION = (
    "subscription($types: [String!]) { events(types: $types) { id type source time subject data } }"
)


async def graphql_ws(server: Server, token: str) -> Any:
    url = server.url.replace("http", "ws") + "/graphql"
    ws = await websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ack["type"] == "connection_ack"
    return ws


async def test_login_reaches_socketio_subscription_and_analytics(server: Server) -> None:
    registered = await register(server)
    user = registered["user"]
    team_id = user["memberships"][0]["team"]["id"]
    assert user["memberships"][0]["role"] == "owner"
    assert "billing:manage" in user["permissions"]

    received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("connection_ready", lambda data: received.put_nowait(("connection_ready", data)))
    sio.on("user.logged_in", lambda data: received.put_nowait(("user.logged_in", data)))
    await sio.connect(
        server.url, auth={"token": registered["token"]}, transports=["websocket"], wait_timeout=10
    )

    ws = await graphql_ws(server, registered["token"])
    await ws.send(
        json.dumps(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {
                    "query": EVENTS_SUBSCRIPTION,
                    "variables": {"types": ["user.logged_in"]},
                },
            }
        )
    )
    await eventually(lambda: _listening(server))
    try:
        name, ready = await asyncio.wait_for(received.get(), 5)
        assert name == "connection_ready"
        assert ready == {"userId": user["id"], "rooms": [f"user:{user['id']}", f"team:{team_id}"]}

        login = await server.graphql(LOGIN, {"email": user["email"].upper(), "password": PASSWORD})
        assert "errors" not in login, login

        name, pushed = await asyncio.wait_for(received.get(), 10)
        assert name == "user.logged_in"
        assert pushed["type"] == "user.logged_in"
        assert pushed["source"] == "haunted/auth"
        assert pushed["subject"] == user["id"]
        assert pushed["data"]["user_id"] == user["id"]
        assert set(pushed) == {"id", "type", "source", "time", "subject", "data"}

        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "next" and message["id"] == "1"
        assert message["payload"]["data"]["events"]["id"] == pushed["id"]
    finally:
        await sio.disconnect()
        await ws.close()

    async def ingested() -> bool:
        # Answers are cached for minutes: ask once the events are in analytics' store.
        async with server.haunted.db.read() as session:
            types = set((await session.scalars(select(AnalyticsEvent.type))).all())
        return {"user.logged_in", "user.registered", "team.created"} <= types

    await eventually(ingested)
    body = await server.graphql("{ eventCounts { name count } }", token=registered["token"])
    found = {row["name"]: row["count"] for row in body["data"]["eventCounts"]}
    assert found["user.logged_in"] == 1
    assert found["user.registered"] == 1
    assert found["team.created"] == 1


async def _listening(server: Server) -> bool:
    return server.haunted.hub.listener_count > 0


async def test_socketio_refuses_a_bad_token(server: Server) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    sio.on("connect_error", lambda data: errors.append(data))
    try:
        await sio.connect(
            server.url, auth={"token": "not-a-jwt"}, transports=["websocket"], wait_timeout=10
        )
    except socketio.exceptions.ConnectionError:
        pass
    assert not sio.connected
    assert errors and errors[0] == {"message": "unauthorized"}
