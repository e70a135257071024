"""GraphQL subscriptions over graphql-transport-ws (gateway/resolvers/events.py): fed by
the same fan-out as Socket.IO, with the same audience rules, authenticated in
connection_init, ended with the session."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from schemas import FlagUpdated, SubscriptionActivated, TeamMemberAdded, TeamMemberRemoved
from tests.conftest import Server, eventually, register
from tests.gateway.realtime import notify, publish

EVENTS = "subscription($types: [String!]) { events(types: $types) { id type subject data } }"
NOTIFICATIONS = "subscription { notifications { id type title body data createdAt readAt } }"


@pytest.fixture(scope="module")
def server(shared_server: Server) -> Server:
    return shared_server


async def open_socket(server: Server, payload: Any) -> ClientConnection:
    url = server.url.replace("http", "ws") + "/graphql"
    ws = await websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws


async def authenticated(server: Server, token: str) -> ClientConnection:
    ws = await open_socket(server, {"authorization": f"Bearer {token}"})
    ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ack == {"type": "connection_ack"}
    return ws


async def subscribe(
    server: Server, ws: ClientConnection, query: str, variables: dict[str, Any] | None = None
) -> str:
    """Starts an operation and waits until the hub listens for it; returns its id."""
    operation_id = uuid.uuid4().hex
    before = server.haunted.hub.listener_count
    await ws.send(
        json.dumps(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )
    )

    async def listening() -> bool:
        return server.haunted.hub.listener_count > before

    await eventually(listening)
    return operation_id


async def next_payload(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), 15))
    assert message["type"] == "next", message
    data: dict[str, Any] = message["payload"]["data"]
    return data


async def close_code(ws: ClientConnection) -> int | None:
    """Reads until the server closes the socket; returns the close code."""
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    return ws.close_code


@pytest.mark.parametrize(
    "payload",
    [
        {"authorization": "Bearer not-a-jwt"},
        {"authorization": "not-bearer"},
        {},
        None,
    ],
)
async def test_a_bad_token_in_connection_init_closes_the_socket_with_4403(
    server: Server, payload: Any
) -> None:
    ws = await open_socket(server, payload)
    assert await close_code(ws) == 4403


async def test_notifications_and_events_follow_the_audience_rules(server: Server) -> None:
    me, other = await register(server), await register(server)
    user_id = me["user"]["id"]
    team_id = me["user"]["memberships"][0]["team"]["id"]
    ws = await authenticated(server, me["token"])
    try:
        await subscribe(server, ws, NOTIFICATIONS)
        await notify(server.haunted, other["user"]["id"], "not mine")
        await notify(server.haunted, user_id, "mine", body="b", data={"k": "v"})
        received = (await next_payload(ws))["notifications"]
        assert (received["title"], received["body"], received["data"]) == ("mine", "b", {"k": "v"})
        assert received["type"] == "test"
        assert received["readAt"] is None
        assert received["createdAt"].endswith("Z")

        types = ["subscription.activated", "flag.updated"]
        events_id = await subscribe(server, ws, EVENTS, {"types": types})
        other_team = other["user"]["memberships"][0]["team"]["id"]
        await publish(
            server.haunted,
            _activated(other_team),  # not my team
            TeamMemberAdded(team_id=team_id, user_id=str(uuid.uuid4()), role="viewer"),  # filtered
            _activated(team_id),
            FlagUpdated(flag="beta", enabled=False),
        )
        seen: list[dict[str, Any]] = []
        while len(seen) < 2:
            message = json.loads(await asyncio.wait_for(ws.recv(), 15))
            if message["id"] == events_id:
                seen.append(message["payload"]["data"]["events"])
        # Two topics: consumed side by side, so in either order.
        assert sorted((e["type"], e["subject"]) for e in seen) == [
            ("flag.updated", "beta"),
            ("subscription.activated", team_id),
        ]
    finally:
        await ws.close()


async def test_logout_closes_the_socket_with_4403_and_a_new_one_is_refused(
    server: Server,
) -> None:
    me = await register(server)
    ws = await authenticated(server, me["token"])
    await subscribe(server, ws, EVENTS)
    await subscribe(server, ws, NOTIFICATIONS)

    assert await server.graphql("mutation { logout }", token=me["token"]) == {
        "data": {"logout": True}
    }
    assert await close_code(ws) == 4403

    again = await open_socket(server, {"authorization": f"Bearer {me['token']}"})
    assert await close_code(again) == 4403


async def next_event(ws: ClientConnection, type_: str, team_id: str) -> dict[str, Any]:
    """The next event of this type about this team (their registration's own come too)."""
    while True:
        event: dict[str, Any] = (await next_payload(ws))["events"]
        if event["type"] == type_ and event["subject"] == team_id:
            return event


async def test_a_removed_member_stops_getting_the_team_events(server: Server) -> None:
    owner, joiner = await register(server), await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    joiner_id = joiner["user"]["id"]
    types = {"types": ["subscription.activated", "team.member_added", "team.member_removed"]}
    owner_ws = await authenticated(server, owner["token"])
    joiner_ws = await authenticated(server, joiner["token"])
    try:
        await subscribe(server, owner_ws, EVENTS, types)
        await subscribe(server, joiner_ws, EVENTS, types)
        await publish(
            server.haunted, TeamMemberAdded(team_id=team_id, user_id=joiner_id, role="member")
        )
        # A new member hears of their own arrival (and is in the team from then on).
        await next_event(joiner_ws, "team.member_added", team_id)
        await next_event(owner_ws, "team.member_added", team_id)
        await publish(server.haunted, _activated(team_id))
        await next_event(joiner_ws, "subscription.activated", team_id)
        await next_event(owner_ws, "subscription.activated", team_id)

        await publish(server.haunted, TeamMemberRemoved(team_id=team_id, user_id=joiner_id))
        await next_event(joiner_ws, "team.member_removed", team_id)  # told of their removal
        await next_event(owner_ws, "team.member_removed", team_id)
        await publish(server.haunted, _activated(team_id))
        # Once the owner has it, the hub has offered it to every listener it was for.
        await next_event(owner_ws, "subscription.activated", team_id)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(joiner_ws.recv(), 0.5)
    finally:
        await owner_ws.close()
        await joiner_ws.close()


def _activated(team_id: str) -> SubscriptionActivated:
    return SubscriptionActivated(
        team_id=team_id,
        subscription_id=f"sub_{uuid.uuid4().hex[:8]}",
        plan_id="pro",
        status="active",
        current_period_end=datetime(2030, 1, 1, tzinfo=UTC),
    )


async def test_events_refuses_unknown_and_internal_types_and_the_socket_goes_on(
    server: Server,
) -> None:
    me = await register(server)
    team_id = me["user"]["memberships"][0]["team"]["id"]
    ws = await authenticated(server, me["token"])
    try:
        bad = ["user.loggedin", "analytics.tracked", "user.logged_in"]  # a typo, an internal
        await ws.send(
            json.dumps(
                {
                    "id": "bad",
                    "type": "subscribe",
                    "payload": {"query": EVENTS, "variables": {"types": bad}},
                }
            )
        )
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "error" and message["id"] == "bad", message
        [error] = message["payload"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["types"] == ["user.loggedin", "analytics.tracked"]
        assert "user.loggedin" in error["message"] and "analytics.tracked" in error["message"]
        assert "user.logged_in" in error["message"]  # listed among the pushable types

        # The same socket still subscribes, and a pushable type does arrive.
        await subscribe(server, ws, EVENTS, {"types": ["subscription.activated"]})
        await publish(server.haunted, _activated(team_id))
        received = (await next_payload(ws))["events"]
        assert received["type"] == "subscription.activated"
    finally:
        await ws.close()
