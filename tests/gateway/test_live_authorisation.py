"""Live authorisation on every channel (issue 14, finding 1 and 4): an open GraphQL
WebSocket, a subscription or a Socket.IO connection acts and hears as its principal
stands now, not as it stood when it connected.

Each test replays a step of the penetration test's attack over the network."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from events.embedded import EmbeddedBroker
from events.envelope import Envelope
from gateway.push import PUSH_PERMISSIONS
from haunted.settings import Settings
from schemas import CATALOG, Audience, FlagUpdated, SubscriptionActivated
from services.auth import SessionStore
from services.principal import ROLE_PERMISSIONS
from tests.conftest import Server, eventually, register, serve, unique_email
from tests.gateway.realtime import Recorder, publish, session_id_of
from tests.gateway.test_subscriptions import (
    EVENTS,
    authenticated,
    close_code,
    next_payload,
    subscribe,
)

INVITE = """mutation($t: ID!, $email: String!, $role: String!) {
  inviteMember(teamId: $t, email: $email, role: $role) { id token }
}"""
ACCEPT = "mutation($token: String!) { acceptInvite(token: $token) { role } }"
MEMBERS = "query($t: ID!) { team(id: $t) { members { userId role } } }"
CREATE_KEY = """mutation($t: ID, $name: String!, $permissions: [String!]!) {
  createApiKey(teamId: $t, name: $name, permissions: $permissions) { key apiKey { id } }
}"""
REMOVE = "mutation($t: ID!, $u: ID!) { removeMember(teamId: $t, userId: $u) }"
CHANGE_ROLE = """mutation($t: ID!, $u: ID!, $r: String!) {
  changeRole(teamId: $t, userId: $u, role: $r) { role }
}"""
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) }"


@pytest.fixture(scope="module")
def server(shared_server: Server) -> Server:
    return shared_server


async def team_with_member(server: Server, role: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """An owner, and a second user who joined the owner's team with `role`."""
    email = unique_email()
    owner = await register(server)
    member = await register(server, email)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    invite = await server.data(INVITE, {"t": team_id, "email": email, "role": role}, owner["token"])
    await server.data(ACCEPT, {"token": invite["inviteMember"]["token"]}, member["token"])
    return owner, member, team_id


async def run(ws: ClientConnection, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """One query or mutation over an open graphql-transport-ws socket: its result."""
    operation_id = uuid.uuid4().hex
    await ws.send(
        json.dumps(
            {
                "id": operation_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables},
            }
        )
    )
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if message.get("id") != operation_id:
            continue
        if message["type"] == "next":
            result: dict[str, Any] = message["payload"]
            return result
        if message["type"] == "error":
            return {"data": None, "errors": message["payload"]}
        raise AssertionError(message)


def codes(result: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in result.get("errors") or []]


async def test_a_removed_and_logged_out_member_s_open_socket_loses_everything(
    server: Server,
) -> None:
    owner, fired, team_id = await team_with_member(server, "admin")
    fired_id = fired["user"]["id"]
    ws = await authenticated(server, fired["token"])
    try:
        # Connected as an admin: the socket reads members and could invite.
        members = await run(ws, MEMBERS, {"t": team_id})
        assert fired_id in [m["userId"] for m in members["data"]["team"]["members"]]

        await server.data(REMOVE, {"t": team_id, "u": fired_id}, owner["token"])
        # The same socket, the very next operation: as the caller stands now.
        assert codes(await run(ws, MEMBERS, {"t": team_id})) == ["NOT_FOUND"]
        invite = {"t": team_id, "email": unique_email(), "role": "admin"}
        assert codes(await run(ws, INVITE, invite)) == ["FORBIDDEN"]
        key = {"t": team_id, "name": "mine", "permissions": ["team:manage"]}
        assert codes(await run(ws, CREATE_KEY, key)) == ["FORBIDDEN"]
        keys = await server.data(
            "query($t: ID) { apiKeys(teamId: $t) { id } }", {"t": team_id}, owner["token"]
        )
        assert keys["apiKeys"] == []

        # Logging out elsewhere ends the open socket, without it sending anything.
        assert await server.data("mutation { logout }", {}, fired["token"]) == {"logout": True}
        assert await close_code(ws) == 4403
    finally:
        await ws.close()


async def test_a_demoted_admin_s_open_socket_can_no_longer_invite(server: Server) -> None:
    owner, demoted, team_id = await team_with_member(server, "admin")
    ws = await authenticated(server, demoted["token"])
    try:
        invite = {"t": team_id, "email": unique_email(), "role": "member"}
        assert "errors" not in await run(ws, INVITE, invite)
        variables = {"t": team_id, "u": demoted["user"]["id"], "r": "viewer"}
        await server.data(CHANGE_ROLE, variables, owner["token"])
        invite["email"] = unique_email()
        assert codes(await run(ws, INVITE, invite)) == ["FORBIDDEN"]
        still = await run(ws, MEMBERS, {"t": team_id})  # a viewer still reads the team
        assert "errors" not in still
    finally:
        await ws.close()


async def test_a_session_ended_without_its_event_refuses_the_next_operation(
    server: Server,
) -> None:
    """The session store, not the event, is what each operation checks: a session gone
    from it (idled out, or revoked while this gateway missed the event) closes the socket."""
    me = await register(server)
    ws = await authenticated(server, me["token"])
    try:
        assert "errors" not in await run(ws, "{ me { id } }", {})
        await SessionStore(server.haunted.redis, 60).delete(session_id_of(me["token"]))
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }"}})
        )
        assert await close_code(ws) == 4403
    finally:
        await ws.close()


def test_every_pushable_team_or_public_topic_names_the_permission_it_needs() -> None:
    """Declared on the model (`push_permission`): a new team topic names it there, and a
    permission no role holds would push it to nobody."""
    shared = {
        topic
        for topic, model in CATALOG.items()
        if model.audience in (Audience.TEAM, Audience.PUBLIC)
    }
    assert set(PUSH_PERMISSIONS) == shared
    held = set().union(*ROLE_PERMISSIONS.values())
    assert {topic: p for topic, p in PUSH_PERMISSIONS.items() if p not in held} == {}
    others = [m.topic for m in CATALOG.values() if m.topic not in shared and m.push_permission]
    assert others == [], "only team and public topics are pushed by permission"
    # The contract's topics keep the permissions they had when the map was written by hand.
    assert {topic: PUSH_PERMISSIONS[topic] for topic in PINNED} == PINNED


PINNED = {
    "team.created": "team:read",
    "team.member_added": "team:read",
    "team.member_removed": "team:read",
    "team.role_changed": "team:read",
    "team.two_factor_required": "team:read",
    "api_key.revoked": "team:manage",
    "invite.created": "team:invite",
    "invite.revoked": "team:invite",
    "subscription.activated": "billing:read",
    "subscription.updated": "billing:read",
    "subscription.canceled": "billing:read",
    "invoice.paid": "billing:read",
    "payment.failed": "billing:read",
    "flag.updated": "flags:read",
    "webhook.endpoint_changed": "webhooks:manage",
}


async def test_api_keys_hear_only_what_their_scopes_allow_and_stop_when_revoked(
    server: Server,
) -> None:
    owner, member, team_id = await team_with_member(server, "member")
    flags_only = (
        await server.data(
            CREATE_KEY,
            {"t": team_id, "name": "flags", "permissions": ["flags:read"]},
            owner["token"],
        )
    )["createApiKey"]
    team_reader = (
        await server.data(
            CREATE_KEY,
            {"t": team_id, "name": "team", "permissions": ["team:read"]},
            owner["token"],
        )
    )["createApiKey"]
    owner_socket, flags_socket, team_socket = Recorder(), Recorder(), Recorder()
    await owner_socket.connect(server.url, {"token": owner["token"]})
    await flags_socket.connect(server.url, {"token": flags_only["key"]})
    await team_socket.connect(server.url, {"token": team_reader["key"]})
    flags_ws = await authenticated(server, flags_only["key"])
    try:
        for recorder in (owner_socket, flags_socket, team_socket):
            await recorder.wait_for("connection_ready")
        await subscribe(server, flags_ws, EVENTS)

        # A role change: team:read hears it; a flags:read key does not.
        variables = {"t": team_id, "u": member["user"]["id"], "r": "viewer"}
        await server.data(CHANGE_ROLE, variables, owner["token"])
        await team_socket.wait_for("team.role_changed")
        await owner_socket.wait_for("team.role_changed")
        # A billing event: billing:read is needed, which neither key has.
        await publish(server.haunted, _activated(team_id))
        await owner_socket.wait_for("subscription.activated")
        # Then a flag change, which flags:read hears: everything before it was decided.
        await publish(server.haunted, FlagUpdated(flag=f"f{uuid.uuid4().hex[:6]}", enabled=True))
        await flags_socket.wait_for("flag.updated")
        pushed = (await next_payload(flags_ws))["events"]
        assert pushed["type"] == "flag.updated"
        assert [name for name, _ in flags_socket.events if "." in name] == ["flag.updated"]
        await owner_socket.wait_for("flag.updated")
        assert not team_socket.named("subscription.activated")
        assert not team_socket.named("flag.updated")

        # Revoked: its Socket.IO connection and its GraphQL WebSocket end at once.
        revoked = await server.data(REVOKE_KEY, {"id": flags_only["apiKey"]["id"]}, owner["token"])
        assert revoked == {"revokeApiKey": True}
        assert await close_code(flags_ws) == 4403

        async def disconnected() -> bool:
            return bool(flags_socket.disconnects)

        await eventually(disconnected)
        assert team_socket.sio.connected  # the other key is untouched
        # The team's admins hear of it (team:manage), the team:read key does not.
        await owner_socket.wait_for("api_key.revoked")
    finally:
        for recorder in (owner_socket, flags_socket, team_socket):
            await recorder.close()
        await flags_ws.close()


async def test_while_events_arrive_late_each_push_rechecks_its_recipients(
    server: Server,
) -> None:
    """A late event means the view built from events may be behind: the session store is
    asked about every recipient before the push goes out."""
    owner, member, team_id = await team_with_member(server, "member")
    member_socket, owner_socket = Recorder(), Recorder()
    await member_socket.connect(server.url, {"token": member["token"]})
    await owner_socket.connect(server.url, {"token": owner["token"]})
    try:
        await member_socket.wait_for("connection_ready")
        await owner_socket.wait_for("connection_ready")
        # The member's session ends, and this gateway never hears of it.
        await SessionStore(server.haunted.redis, 60).delete(session_id_of(member["token"]))
        late = Envelope.wrap(_activated(team_id), time=datetime.now(UTC) - timedelta(minutes=1))
        await server.haunted.hub.deliver(late)
        await owner_socket.wait_for("subscription.activated")

        async def disconnected() -> bool:
            return bool(member_socket.disconnects)

        await eventually(disconnected)
        assert not member_socket.named("subscription.activated")
        assert not server.haunted.hub.trusted
    finally:
        await member_socket.close()
        await owner_socket.close()


def _activated(team_id: str) -> SubscriptionActivated:
    return SubscriptionActivated(
        team_id=team_id,
        subscription_id=f"sub_{uuid.uuid4().hex[:8]}",
        plan_id="pro",
        status="active",
        current_period_end=datetime(2030, 1, 1, tzinfo=UTC),
    )


async def test_while_the_broker_is_away_open_connections_are_checked_against_the_store(
    settings: Settings, kafka: EmbeddedBroker
) -> None:
    """No event can say the session ended: the hub, which cannot trust its view while
    the broker does not answer, asks the session store about every connection."""
    async with serve(settings) as server:
        me = await register(server)
        socket = Recorder()
        await socket.connect(server.url, {"token": me["token"]})
        try:
            await socket.wait_for("connection_ready")
            await kafka.stop()
            assert await server.data("mutation { logout }", {}, me["token"]) == {"logout": True}

            async def disconnected() -> bool:
                return bool(socket.disconnects)

            await eventually(disconnected, timeout_s=30)
            assert not server.haunted.hub.trusted
        finally:
            await socket.close()
            await kafka.start()  # the process stops against a broker that answers
