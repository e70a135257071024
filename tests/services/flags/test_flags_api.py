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
