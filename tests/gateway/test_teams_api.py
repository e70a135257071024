"""Teams through GraphQL over real HTTP: create, invite, accept, change roles, remove,
leave; each refusal with its contract code and nothing written."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from haunted.runtime import Haunted
from services.auth.models import Invite
from tests.conftest import Server, register
from tests.services.auth.conftest import outbox_topics, roles_in, snapshot

CREATE_TEAM = "mutation($name: String!) { createTeam(name: $name) { id name } }"
INVITE = """
mutation($t: ID!, $email: String!, $role: String!) {
  inviteMember(teamId: $t, email: $email, role: $role) { id teamId role expiresAt token }
}"""
ACCEPT = "mutation($token: String!) { acceptInvite(token: $token) { team { id name } role } }"
CHANGE_ROLE = """
mutation($t: ID!, $u: ID!, $role: String!) {
  changeRole(teamId: $t, userId: $u, role: $role) { team { id } role }
}"""
REMOVE = "mutation($t: ID!, $u: ID!) { removeMember(teamId: $t, userId: $u) }"
TEAM = "query($t: ID!) { team(id: $t) { id name members { userId email role } } }"


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def refused(
    server: Server, code: str, document: str, variables: dict[str, Any], token: str | None
) -> None:
    haunted: Haunted = server.haunted
    before = await snapshot(haunted)
    body = await server.graphql(document, variables, token)
    assert codes(body) == [code], body
    assert await snapshot(haunted) == before


async def test_team_lifecycle_over_graphql(server: Server) -> None:
    haunted = server.haunted
    owner, bob, eve = await register(server), await register(server), await register(server)
    o, b, e = owner["token"], bob["token"], eve["token"]
    bob_id = bob["user"]["id"]
    events = await outbox_topics(haunted)

    team = (await server.data(CREATE_TEAM, {"name": "Skunkworks"}, o))["createTeam"]
    t = team["id"]
    assert team["name"] == "Skunkworks"
    assert await roles_in(haunted, t) == {owner["user"]["id"]: "owner"}
    assert await outbox_topics(haunted) - events == Counter(
        {"team.created": 1, "team.member_added": 1}
    )

    # Bob is invited as a member (his address in another case) and accepts.
    invite = (
        await server.data(
            INVITE, {"t": t, "email": bob["user"]["email"].upper(), "role": "member"}, o
        )
    )["inviteMember"]
    assert invite["token"].startswith("hi_") and invite["teamId"] == t
    await refused(server, "FORBIDDEN", ACCEPT, {"token": invite["token"]}, e)
    await refused(server, "NOT_FOUND", ACCEPT, {"token": "hi_nope"}, b)
    accepted = (await server.data(ACCEPT, {"token": invite["token"]}, b))["acceptInvite"]
    assert accepted == {"team": {"id": t, "name": "Skunkworks"}, "role": "member"}
    await refused(server, "CONFLICT", ACCEPT, {"token": invite["token"]}, b)
    members = (await server.data(TEAM, {"t": t}, b))["team"]["members"]
    assert {(m["userId"], m["role"]) for m in members} == {
        (owner["user"]["id"], "owner"),
        (bob_id, "member"),
    }
    assert {"email": bob["user"]["email"], "role": "member", "userId": bob_id} in members

    # A member may neither invite nor change roles; an outsider may not even look.
    await refused(
        server, "FORBIDDEN", INVITE, {"t": t, "email": "x@example.com", "role": "viewer"}, b
    )
    await refused(server, "FORBIDDEN", CHANGE_ROLE, {"t": t, "u": bob_id, "role": "admin"}, b)
    await refused(server, "NOT_FOUND", TEAM, {"t": t}, e)
    await refused(server, "BAD_USER_INPUT", CHANGE_ROLE, {"t": t, "u": bob_id, "role": "god"}, o)
    await refused(
        server,
        "CONFLICT",
        CHANGE_ROLE,
        {"t": t, "u": owner["user"]["id"], "role": "admin"},
        o,
    )

    # Promoted, Bob's very next request has admin's permissions in that team.
    changed = await server.data(CHANGE_ROLE, {"t": t, "u": bob_id, "role": "admin"}, o)
    assert changed["changeRole"] == {"team": {"id": t}, "role": "admin"}
    await server.data(INVITE, {"t": t, "email": "z@example.com", "role": "viewer"}, b)
    await refused(
        server, "FORBIDDEN", REMOVE, {"t": t, "u": owner["user"]["id"]}, b
    )  # an admin cannot remove an owner

    # Bob leaves: removeMember with his own id, then he no longer sees the team.
    events = await outbox_topics(haunted)
    assert (await server.data(REMOVE, {"t": t, "u": bob_id}, b)) == {"removeMember": True}
    # ...and the invite he sent as an admin dies with his right to invite.
    assert await outbox_topics(haunted) - events == Counter(
        {"team.member_removed": 1, "invite.revoked": 1}
    )
    await refused(server, "NOT_FOUND", TEAM, {"t": t}, b)
    await refused(
        server, "FORBIDDEN", INVITE, {"t": t, "email": "y@example.com", "role": "viewer"}, b
    )
    # The last owner cannot leave.
    await refused(server, "CONFLICT", REMOVE, {"t": t, "u": owner["user"]["id"]}, o)
    await refused(server, "UNAUTHENTICATED", REMOVE, {"t": t, "u": owner["user"]["id"]}, None)
    await refused(
        server, "UNAUTHENTICATED", REMOVE, {"t": t, "u": owner["user"]["id"]}, "not-a-token"
    )


PREVIEW = "query($token: String!) { invite(token: $token) { teamName role expiresAt } }"


async def test_invite_preview_needs_no_sign_in_and_refuses_spent_tokens(server: Server) -> None:
    """The invite link's page shows the team and role before the invitee signs in;
    an unknown, used or expired token is refused with its own code, naming `token`."""
    haunted: Haunted = server.haunted
    owner, bob = await register(server), await register(server)
    t = (await server.data(CREATE_TEAM, {"name": "Lighthouse"}, owner["token"]))["createTeam"]["id"]
    variables = {"t": t, "email": bob["user"]["email"], "role": "admin"}
    invite = (await server.data(INVITE, variables, owner["token"]))["inviteMember"]

    preview = (await server.data(PREVIEW, {"token": invite["token"]}, None))["invite"]
    assert preview == {"teamName": "Lighthouse", "role": "admin", "expiresAt": invite["expiresAt"]}

    body = await server.graphql(PREVIEW, {"token": "hi_unknown"}, None)
    assert codes(body) == ["NOT_FOUND"] and body["errors"][0]["extensions"]["field"] == "token"
    assert body["data"] is None

    await server.data(ACCEPT, {"token": invite["token"]}, bob["token"])
    body = await server.graphql(PREVIEW, {"token": invite["token"]}, None)
    assert codes(body) == ["CONFLICT"]

    expiring = (
        await server.data(INVITE, {**variables, "email": "late@example.com"}, owner["token"])
    )["inviteMember"]
    async with haunted.db.transaction() as session:
        await session.execute(
            update(Invite)
            .where(Invite.id == expiring["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    body = await server.graphql(PREVIEW, {"token": expiring["token"]}, None)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"] == "this invite has expired"
