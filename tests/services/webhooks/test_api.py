"""Webhooks end to end: GraphQL, the live consumer group, the delivery worker of the
process, replay from the retained topics; signatures checked by `standardwebhooks`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.conftest import Server, eventually, register, unique_email
from tests.services.webhooks.conftest import Receiver, Receivers

CREATE = """
mutation($teamId: ID!, $url: String!, $types: [String!]!) {
  createWebhookEndpoint(teamId: $teamId, url: $url, eventTypes: $types) {
    id teamId url eventTypes enabled secret
  }
}"""
LIST = "query($teamId: ID) { webhookEndpoints(teamId: $teamId) { id secret enabled } }"
DELIVERIES = """
query($id: ID!) {
  webhookDeliveries(endpointId: $id) {
    eventId eventType status attempts responseCode latencyMs error
  }
}"""
INVITE = """
mutation($teamId: ID!, $email: String!) {
  inviteMember(teamId: $teamId, email: $email, role: "member") { id }
}"""
REPLAY = """
mutation($id: ID!, $since: DateTime!) {
  replayWebhooks(endpointId: $id, since: $since) { id status }
}"""


def events_of(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Each request verified by the spec's library before it is read."""
    return [Webhook(secret).verify(each.body, each.headers) for each in receiver.received]


async def test_team_events_reach_the_endpoint_signed_and_replay_resends(
    server: Server, receivers: Receivers
) -> None:
    receiver = await receivers()
    owner = await register(server)
    token = owner["token"]
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    types = ["invite.created", "team.created"]
    created = await server.graphql(
        CREATE, {"teamId": team_id, "url": receiver.url, "types": types}, token
    )
    endpoint = created["data"]["createWebhookEndpoint"]
    secret = endpoint["secret"]
    assert secret.startswith("whsec_") and endpoint["eventTypes"] == types
    listed = await server.graphql(LIST, {"teamId": team_id}, token)
    assert listed["data"]["webhookEndpoints"] == [
        {"id": endpoint["id"], "secret": None, "enabled": True}
    ]

    # Live: an invite made now is delivered (team.created came before the endpoint).
    invited = await server.graphql(INVITE, {"teamId": team_id, "email": unique_email()}, token)
    invite_id = invited["data"]["inviteMember"]["id"]

    async def delivered() -> list[dict[str, Any]]:
        return events_of(receiver, secret)

    [live] = await eventually(delivered)
    assert live["type"] == "invite.created" and live["data"]["invite_id"] == invite_id
    assert live["data"]["team_id"] == team_id

    # Replay from before registration: team.created now, and the invite once more.
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    replay = await server.graphql(REPLAY, {"id": endpoint["id"], "since": since}, token)
    assert replay["data"]["replayWebhooks"]["status"] == "pending"

    async def replayed() -> bool:
        return len(receiver.received) >= 3

    await eventually(replayed, timeout_s=20)
    seen = events_of(receiver, secret)
    assert sorted(each["type"] for each in seen) == ["invite.created"] * 2 + ["team.created"]
    assert seen[0]["id"] in {each["id"] for each in seen[1:]}  # the same CloudEvent id

    async def logged() -> set[tuple[str, str, int]]:
        log = (await server.graphql(DELIVERIES, {"id": endpoint["id"]}, token))["data"]
        return {
            (each["eventType"], each["status"], each["responseCode"])
            for each in log["webhookDeliveries"]
        }

    async def all_succeeded() -> bool:  # the outcome is recorded after the answer came
        return {status for _, status, _ in await logged()} == {"succeeded"}

    await eventually(all_succeeded)
    assert await logged() == {
        ("invite.created", "succeeded", 200),
        ("team.created", "succeeded", 200),
    }


async def test_the_api_refuses_bad_input_and_strangers(
    server: Server, receivers: Receivers
) -> None:
    receiver = await receivers()
    owner, stranger = await register(server), await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    bad = await server.graphql(
        CREATE, {"teamId": team_id, "url": "gopher://x", "types": ["team.created"]}, owner["token"]
    )
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    refused = await server.graphql(
        CREATE,
        {"teamId": team_id, "url": receiver.url, "types": ["team.created"]},
        stranger["token"],
    )
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await server.graphql(LIST, {"teamId": team_id})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    listed = await server.graphql(LIST, {"teamId": team_id}, owner["token"])
    assert listed["data"]["webhookEndpoints"] == []
