"""API keys: granted from the creator's permissions, shown once, stored hashed,
usable as a bearer token through the real gateway, revocable at once."""

from __future__ import annotations

from typing import Any

from haunted.runtime import Haunted
from services.auth.api_keys import ApiKeyService
from services.auth.crypto import token_hash
from services.auth.models import ApiKey
from services.auth.teams import TeamService
from tests.conftest import Server, register, unique_email
from tests.services.auth.conftest import (
    join,
    principal_of,
    refused,
    roles_in,
    sign_up,
    snapshot,
)

EVENT_COUNTS = "query($t: ID) { eventCounts(teamId: $t) { name count } }"
API_KEYS = "query($t: ID) { apiKeys(teamId: $t) { id lastUsedAt revokedAt } }"
CREATE_KEY = """
mutation($name: String!, $permissions: [String!]!, $t: ID) {
  createApiKey(name: $name, permissions: $permissions, teamId: $t) {
    key apiKey { id teamId name permissions lastUsedAt revokedAt }
  }
}"""
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) }"
INVITE = """
mutation($t: ID!, $email: String!) {
  inviteMember(teamId: $t, email: $email, role: "viewer") { token }
}"""


async def key_row(facades: Haunted, key_id: str) -> ApiKey:
    async with facades.db.read() as session:
        row = await session.get(ApiKey, key_id)
    assert row is not None
    return row


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def test_create_grants_a_subset_once_and_stores_a_hash(facades: Haunted) -> None:
    keys: ApiKeyService = facades.services.api_keys
    owner = await sign_up(facades)
    team_id = owner.own_team_id
    admin = await principal_of(facades, await join(facades, owner, team_id, "admin"))

    key, view = await keys.create(
        admin, " reporting ", ["analytics:read", "team:read"], team_id=team_id
    )

    assert key.startswith(f"hk_{view.id}_")
    assert (view.team_id, view.name, view.permissions) == (
        team_id,
        "reporting",
        ["analytics:read", "team:read"],
    )
    assert view.last_used_at is None and view.revoked_at is None
    secret = key.removeprefix(f"hk_{view.id}_")
    row = await key_row(facades, view.id)
    assert row.secret_hash == token_hash(secret)
    assert secret not in row.secret_hash and key not in row.secret_hash
    # Listed without the secret: it is shown only once.
    listed = await keys.list(admin, team_id=team_id)
    assert [(k.id, k.permissions) for k in listed] == [(view.id, view.permissions)]
    assert all(secret not in repr(k) for k in listed)

    # More than the admin has, and a permission that does not exist.
    await refused(facades, "FORBIDDEN", keys.create(admin, "k", ["team:delete"], team_id=team_id))
    await refused(
        facades,
        "BAD_USER_INPUT",
        keys.create(admin, "k", ["analytics:read", "root:all"], team_id=team_id),
    )

    # A key acts for its team only, and may neither make keys nor manage the team.
    owner_p = await principal_of(facades, owner)
    full, _ = await keys.create(
        owner_p, "full", ["team:read", "team:invite", "team:manage"], team_id=team_id
    )
    as_key = await facades.services.auth.authenticate(full)
    assert as_key.api_key_id is not None and set(as_key.teams) == {team_id}
    teams: TeamService = facades.services.teams
    await refused(facades, "FORBIDDEN", keys.create(as_key, "k", ["team:read"], team_id=team_id))
    await refused(facades, "FORBIDDEN", teams.create_team(as_key, "from a key"))
    await refused(
        facades, "FORBIDDEN", teams.invite(as_key, unique_email(), "viewer", team_id=team_id)
    )
    await refused(
        facades,
        "FORBIDDEN",
        teams.change_role(as_key, admin.user_id, "viewer", team_id=team_id),
    )
    await refused(facades, "FORBIDDEN", teams.remove_member(as_key, admin.user_id, team_id=team_id))
    await refused(facades, "FORBIDDEN", teams.members(as_key, team_id=owner.own_team_id + "-other"))
    assert (await roles_in(facades, team_id))[admin.user_id] == "admin"

    # Revoking needs team:manage in the key's team; a key of another team is not found.
    viewer = await principal_of(facades, await join(facades, owner, team_id, "viewer"))
    await refused(facades, "FORBIDDEN", keys.revoke(viewer, view.id))
    stranger = await principal_of(facades, await sign_up(facades))
    await refused(facades, "NOT_FOUND", keys.revoke(stranger, view.id))
    assert (await facades.services.auth.authenticate(key)).granted == {
        "analytics:read",
        "team:read",
    }
    assert await keys.revoke(admin, view.id)  # the key is cached now: revoking drops it
    assert (await key_row(facades, view.id)).revoked_at is not None
    await refused(facades, "UNAUTHENTICATED", facades.services.auth.authenticate(key))


async def test_api_key_through_the_gateway(server: Server) -> None:
    haunted = server.haunted
    owner = await register(server)
    token, team_id = owner["token"], owner["user"]["memberships"][0]["team"]["id"]

    body = await server.graphql(
        CREATE_KEY, {"name": "ci", "permissions": ["analytics:read"], "t": team_id}, token
    )
    assert "errors" not in body, body
    key, key_id = body["data"]["createApiKey"]["key"], body["data"]["createApiKey"]["apiKey"]["id"]
    assert key.startswith("hk_")
    assert body["data"]["createApiKey"]["apiKey"]["permissions"] == ["analytics:read"]
    assert (await key_row(haunted, key_id)).last_used_at is None

    # Allowed: what the key was granted.
    allowed = await server.graphql(EVENT_COUNTS, {"t": team_id}, key)
    assert "errors" not in allowed, allowed
    assert isinstance(allowed["data"]["eventCounts"], list)
    assert (await key_row(haunted, key_id)).last_used_at is not None
    # Not granted: FORBIDDEN, and nothing written.
    before = await snapshot(haunted)
    for document, variables in (
        (API_KEYS, {"t": team_id}),
        (CREATE_KEY, {"name": "x", "permissions": ["analytics:read"], "t": team_id}),
        (INVITE, {"t": team_id, "email": unique_email()}),
        ('mutation { createTeam(name: "from a key") { id } }', {}),
    ):
        refused_body = await server.graphql(document, variables, key)
        assert codes(refused_body) == ["FORBIDDEN"], (document, refused_body)
    assert await snapshot(haunted) == before
    listed = await server.graphql(API_KEYS, {"t": team_id}, token)
    assert [k["id"] for k in listed["data"]["apiKeys"]] == [key_id]
    assert listed["data"]["apiKeys"][0]["lastUsedAt"] is not None

    # Tampered secret, unknown id, not a key at all: UNAUTHENTICATED.
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    unknown = "hk_0000000000000000_" + key.rsplit("_", 1)[-1]
    for bad in (tampered, unknown, "hk_", "hk_nounderscore"):
        assert codes(await server.graphql(EVENT_COUNTS, {"t": team_id}, bad)) == [
            "UNAUTHENTICATED"
        ], bad

    # Revoked: refused on the very next request, though the key was cached.
    revoked = await server.graphql(REVOKE_KEY, {"id": key_id}, token)
    assert revoked == {"data": {"revokeApiKey": True}}
    assert codes(await server.graphql(EVENT_COUNTS, {"t": team_id}, key)) == ["UNAUTHENTICATED"]
    listed = await server.graphql(API_KEYS, {"t": team_id}, token)
    assert listed["data"]["apiKeys"][0]["revokedAt"] is not None
