"""Flags through the gateway: GraphQL over HTTP, evaluated in the serving process."""

from __future__ import annotations

from tests.conftest import Server, register

QUERY = """
query($name: String!) {
  isFeatureEnabled(name: $name)
  featureVariant(name: $name) { name enabled payload }
}"""


async def test_flags_through_graphql(server: Server) -> None:
    token = (await register(server))["token"]
    # The repository's infra/flags.json: the registering user owns the team.
    gated = await server.graphql(QUERY, {"name": "billing-admin-tools"}, token)
    assert gated["data"]["isFeatureEnabled"] is True
    variant = await server.graphql(QUERY, {"name": "checkout-button"}, token)
    assert variant["data"]["isFeatureEnabled"] is True
    assert variant["data"]["featureVariant"]["name"] in {"blue", "green"}
    assert variant["data"]["featureVariant"]["payload"]["type"] == "json"
    free = await server.graphql(QUERY, {"name": "new-dashboard"}, token)  # paid plans only
    assert free["data"]["isFeatureEnabled"] is False
    unknown = await server.graphql(QUERY, {"name": "no-such-flag"}, token)
    assert unknown["data"] == {
        "isFeatureEnabled": False,
        "featureVariant": {"name": "disabled", "enabled": False, "payload": None},
    }
    anonymous = await server.graphql(QUERY, {"name": "checkout-button"})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


FLAGS = "query($t: ID) { flags(teamId: $t) { name description enabled } }"


async def test_every_flag_and_its_state_for_the_team(server: Server) -> None:
    """The listing answers as isFeatureEnabled does, flag by flag."""
    owner = await register(server)
    token = owner["token"]
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    body = await server.graphql(FLAGS, {"t": team_id}, token)
    assert "errors" not in body, body
    states = {flag["name"]: flag["enabled"] for flag in body["data"]["flags"]}
    # infra/flags.json: every flag, in name order.
    assert [flag["name"] for flag in body["data"]["flags"]] == sorted(states)
    assert states == {
        "billing-admin-tools": True,  # the owner may manage billing
        "checkout-button": True,
        "maintenance-banner": False,  # off for everyone
        "new-dashboard": False,  # paid plans only
    }
    for name, enabled in states.items():
        one = await server.graphql(
            "query($n: String!) { isFeatureEnabled(name: $n) }", {"n": name}, token
        )
        assert one["data"]["isFeatureEnabled"] is enabled
    described = {flag["name"]: flag["description"] for flag in body["data"]["flags"]}
    assert described["checkout-button"].startswith("A/B test")

    # A team the caller is not in: refused.
    outsider = await register(server)
    refused = await server.graphql(FLAGS, {"t": team_id}, outsider["token"])
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused["data"] is None
    anonymous = await server.graphql(FLAGS, {"t": team_id})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
