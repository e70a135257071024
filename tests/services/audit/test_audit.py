"""The audit log end to end: GraphQL acts, the audit group projects, auditLog reads;
and a rebuild by replay gives exactly the live log."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from events.envelope import Envelope
from events.replay import replay
from haunted.runtime import Haunted
from haunted.services import replay_targets
from schemas import Event, FlagUpdated, PaymentFailed, SubscriptionActivated, UserLoginFailed
from services.audit import CONSUMER, HANDLERS
from services.principal import Principal
from tests.conftest import LOGIN, PASSWORD, Server, eventually, graphql_ok, register, unique_email

AUDIT_LOG = """query($team: ID!, $first: Int, $after: String) {
  auditLog(teamId: $team, first: $first, after: $after) {
    entries { id action actorId target time client }
    nextCursor
  }
}"""
INVITE = """mutation($team: ID!, $e: String!) {
  inviteMember(teamId: $team, email: $e, role: "member") { id token }
}"""
ACCEPT = "mutation($t: String!) { acceptInvite(token: $t) { role } }"
CHANGE_ROLE = """mutation($team: ID!, $user: ID!) {
  changeRole(teamId: $team, userId: $user, role: "viewer") { role }
}"""
REMOVE = "mutation($team: ID!, $user: ID!) { removeMember(teamId: $team, userId: $user) }"
CREATE_KEY = """mutation($team: ID!) {
  createApiKey(name: "ci", permissions: ["team:read"], teamId: $team) { apiKey { id } }
}"""
REVOKE_KEY = "mutation($id: ID!) { revokeApiKey(id: $id) }"


async def whole_log(server: Server, team_id: str, token: str) -> list[dict[str, Any]]:
    """Every entry, page by page (pages of 3: the cursor is exercised)."""
    entries: list[dict[str, Any]] = []
    after = None
    while True:
        page = (
            await graphql_ok(
                server, AUDIT_LOG, {"team": team_id, "first": 3, "after": after}, token
            )
        )["auditLog"]
        entries.extend(page["entries"])
        after = page["nextCursor"]
        if after is None:
            return entries


async def test_the_audit_log_is_the_teams_history_and_a_rebuild_equals_it(server: Server) -> None:
    owner = await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    token = owner["token"]
    member_email = unique_email()
    member = await register(server, member_email)
    invite = (await graphql_ok(server, INVITE, {"team": team_id, "e": member_email}, token))[
        "inviteMember"
    ]
    await graphql_ok(server, ACCEPT, {"t": invite["token"]}, member["token"])
    member_id = member["user"]["id"]
    # A member below admin may not read the log.
    refused = await server.graphql(AUDIT_LOG, {"team": team_id}, member["token"])
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # The member's own sign-in while a member belongs to the team's log, even after they leave.
    async with server.client() as client:
        response = await client.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"email": member_email, "password": PASSWORD}},
            headers={"User-Agent": "member's browser"},
        )
    assert "errors" not in response.json()
    await graphql_ok(server, CHANGE_ROLE, {"team": team_id, "user": member_id}, token)
    key = (await graphql_ok(server, CREATE_KEY, {"team": team_id}, token))["createApiKey"]["apiKey"]
    await graphql_ok(server, REVOKE_KEY, {"id": key["id"]}, token)
    await graphql_ok(server, REMOVE, {"team": team_id, "user": member_id}, token)

    async def settled() -> list[dict[str, Any]] | None:
        log = await whole_log(server, team_id, token)
        actions = [entry["action"] for entry in log]
        wanted = {"team.member_removed", "user.logged_in", "api_key.revoked"}
        return log if wanted <= set(actions) else None

    live = await eventually(settled, timeout_s=20)
    by_action = {entry["action"]: entry for entry in live}
    owner_id = owner["user"]["id"]
    assert by_action["team.member_removed"]["actorId"] == owner_id
    assert by_action["team.member_removed"]["target"] == f"user:{member_id}"
    assert by_action["team.role_changed"]["actorId"] == owner_id
    assert by_action["api_key.revoked"]["target"] == f"api_key:{key['id']}"
    assert by_action["invite.created"]["actorId"] == owner_id
    assert by_action["team.member_added"]["actorId"] in (owner_id, member_id)
    signed_in = by_action["user.logged_in"]
    assert signed_in["actorId"] == member_id
    assert signed_in["client"] and len(signed_in["client"]) == 32  # a keyed hash
    assert member_email not in str(live)
    times = [entry["time"] for entry in live]
    assert times == sorted(times, reverse=True)  # newest first
    # Nothing of another team, and nothing of the member from before they joined: their
    # registration is their own team's.
    assert sum(entry["action"] == "user.registered" for entry in live) == 1

    haunted = server.haunted
    report = await replay(
        replay_targets()["audit"], haunted.consumers, haunted.db, haunted.kafka, rebuild=True
    )
    assert report.dead_lettered == 0
    assert await whole_log(server, team_id, token) == live


async def test_a_bad_cursor_or_page_size_is_refused(server: Server) -> None:
    owner = await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    for variables in ({"after": "not a cursor"}, {"first": 0}, {"first": 1000}):
        body = await server.graphql(AUDIT_LOG, {"team": team_id, **variables}, owner["token"])
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_billing_and_flag_changes_are_projected_and_anonymous_failures_are_not(
    facades: Haunted,
) -> None:
    team_id, other_team = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    events: list[Event] = [
        SubscriptionActivated(
            team_id=team_id,
            subscription_id="sub_1",
            plan_id="pro",
            status="active",
            current_period_end=now + timedelta(days=30),
        ),
        PaymentFailed(
            team_id=other_team, invoice_id="in_1", amount_cents=100, currency="usd", attempt=1
        ),
        FlagUpdated(flag="new-editor", enabled=True),
        UserLoginFailed(reason="unknown_email", attempt=1),
    ]
    for event in events:
        outcome = await facades.consumers.apply(
            CONSUMER, Envelope.wrap(event), event, HANDLERS.handle
        )
        assert outcome == "handled"
    admin = Principal(user_id="someone", session_id="s", teams={team_id: "admin"})
    page = await facades.services.audit.log(admin, team_id=team_id)
    assert {(e.action, e.actor_id, e.target) for e in page.entries} == {
        ("flag.updated", None, "flag:new-editor"),
        ("subscription.activated", None, "subscription:sub_1"),
    }
    assert page.entries[0].time >= page.entries[1].time
    assert page.next_cursor is None
