"""Invite lifecycle over GraphQL (issue 14, finding 2): pending invites listed and
revocable, expiring, dying with their author's right to invite, bound to their address."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from services.auth.models import Invite
from tests.conftest import Server, register, unique_email
from tests.services.auth.conftest import outbox_topics

INVITE = """mutation($t: ID!, $email: String!, $role: String!) {
  inviteMember(teamId: $t, email: $email, role: $role) { id role token email invitedBy }
}"""
INVITES = "query($t: ID!) { invites(teamId: $t) { id email role invitedBy expiresAt token } }"
REVOKE = "mutation($id: ID!) { revokeInvite(id: $id) }"
ACCEPT = "mutation($token: String!) { acceptInvite(token: $token) { role } }"
REMOVE = "mutation($t: ID!, $u: ID!) { removeMember(teamId: $t, userId: $u) }"
CHANGE_ROLE = """mutation($t: ID!, $u: ID!, $r: String!) {
  changeRole(teamId: $t, userId: $u, role: $r) { role }
}"""


@pytest.fixture(scope="module")
def server(shared_server: Server) -> Server:
    return shared_server


async def code(server: Server, query: str, variables: dict[str, Any], token: str) -> str:
    body = await server.graphql(query, variables, token=token)
    assert body.get("errors"), body
    return str(body["errors"][0]["extensions"]["code"])


async def invite(server: Server, token: str, team_id: str, role: str) -> dict[str, Any]:
    variables = {"t": team_id, "email": unique_email(), "role": role}
    return dict((await server.data(INVITE, variables, token))["inviteMember"])


async def joined(server: Server, owner: dict[str, Any], role: str) -> dict[str, Any]:
    """A user who joined the owner's team with `role`."""
    email = unique_email()
    user = await register(server, email)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    sent = await server.data(INVITE, {"t": team_id, "email": email, "role": role}, owner["token"])
    await server.data(ACCEPT, {"token": sent["inviteMember"]["token"]}, user["token"])
    return user


async def test_pending_invites_are_listed_and_revocable(server: Server) -> None:
    owner = await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    events = await outbox_topics(server.haunted)
    first = await invite(server, owner["token"], team_id, "member")
    second = await invite(server, owner["token"], team_id, "admin")
    assert first["invitedBy"] == owner["user"]["id"] and "@" in first["email"]

    listed = (await server.data(INVITES, {"t": team_id}, owner["token"]))["invites"]
    assert [(i["id"], i["email"], i["role"], i["token"]) for i in listed] == [
        (first["id"], first["email"], "member", None),
        (second["id"], second["email"], "admin", None),
    ]
    assert {i["invitedBy"] for i in listed} == {owner["user"]["id"]}
    expires = datetime.fromisoformat(listed[0]["expiresAt"])
    assert timedelta(days=6) < expires - datetime.now(UTC) <= timedelta(days=7)

    # A plain member may neither list nor revoke; a stranger does not even see them.
    member = await joined(server, owner, "member")
    stranger = await register(server)
    assert await code(server, INVITES, {"t": team_id}, member["token"]) == "FORBIDDEN"
    assert await code(server, REVOKE, {"id": first["id"]}, member["token"]) == "FORBIDDEN"
    assert await code(server, REVOKE, {"id": first["id"]}, stranger["token"]) == "NOT_FOUND"

    assert await server.data(REVOKE, {"id": first["id"]}, owner["token"]) == {"revokeInvite": True}
    assert await server.data(REVOKE, {"id": first["id"]}, owner["token"]) == {"revokeInvite": False}
    listed = (await server.data(INVITES, {"t": team_id}, owner["token"]))["invites"]
    assert [i["id"] for i in listed] == [second["id"]]
    invitee = await register(server, first["email"])
    assert await code(server, ACCEPT, {"token": first["token"]}, invitee["token"]) == (
        "BAD_USER_INPUT"
    )
    changed = await outbox_topics(server.haunted) - events
    assert changed["invite.created"] == 3 and changed["invite.revoked"] == 1


async def test_an_invite_is_bound_to_its_address(server: Server) -> None:
    owner = await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    sent = await invite(server, owner["token"], team_id, "admin")
    other = await register(server)
    assert await code(server, ACCEPT, {"token": sent["token"]}, other["token"]) == "FORBIDDEN"
    invitee = await register(server, sent["email"].upper())
    assert await server.data(ACCEPT, {"token": sent["token"]}, invitee["token"]) == {
        "acceptInvite": {"role": "admin"}
    }


@pytest.mark.parametrize("fate", ["removed", "demoted"])
async def test_an_invite_dies_when_its_author_loses_the_right_to_invite(
    server: Server, fate: str
) -> None:
    owner = await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    admin = await joined(server, owner, "admin")
    sent = await invite(server, admin["token"], team_id, "admin")
    kept = await invite(server, owner["token"], team_id, "member")
    events = await outbox_topics(server.haunted)

    if fate == "removed":
        await server.data(REMOVE, {"t": team_id, "u": admin["user"]["id"]}, owner["token"])
    else:
        variables = {"t": team_id, "u": admin["user"]["id"], "r": "member"}
        await server.data(CHANGE_ROLE, variables, owner["token"])

    listed = (await server.data(INVITES, {"t": team_id}, owner["token"]))["invites"]
    assert [i["id"] for i in listed] == [kept["id"]]
    invitee = await register(server, sent["email"])
    assert await code(server, ACCEPT, {"token": sent["token"]}, invitee["token"]) == (
        "BAD_USER_INPUT"
    )
    assert (await outbox_topics(server.haunted) - events)["invite.revoked"] == 1


async def test_an_expired_invite_is_neither_listed_nor_accepted(server: Server) -> None:
    owner = await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    sent = await invite(server, owner["token"], team_id, "member")
    async with server.haunted.db.transaction() as session:
        await session.execute(
            update(Invite)
            .where(Invite.id == sent["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await server.data(INVITES, {"t": team_id}, owner["token"]))["invites"] == []
    invitee = await register(server, sent["email"])
    assert await code(server, ACCEPT, {"token": sent["token"]}, invitee["token"]) == (
        "BAD_USER_INPUT"
    )
    assert await server.data(REVOKE, {"id": sent["id"]}, owner["token"]) == {"revokeInvite": False}
