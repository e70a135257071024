"""Customer webhooks: resolvers over the webhooks facade."""

from __future__ import annotations

from datetime import datetime

from ariadne import MutationType, ObjectType, QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.webhooks import DeliveryView, EndpointView, ReplayView, WebhooksService


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    webhooks: WebhooksService = services.webhooks
    query = QueryType()
    mutation = MutationType()
    endpoint = ObjectType("WebhookEndpoint")
    delivery = ObjectType("WebhookDelivery")
    replay = ObjectType("WebhookReplay")

    @query.field("webhookEndpoints")
    async def resolve_endpoints(
        _: None, info: GraphQLResolveInfo, teamId: str | None = None
    ) -> list[EndpointView]:
        return await webhooks.endpoints(caller(info), team_id=teamId)

    @query.field("webhookDeliveries")
    async def resolve_deliveries(
        _: None, info: GraphQLResolveInfo, endpointId: str, first: int = 50
    ) -> list[DeliveryView]:
        return await webhooks.deliveries(caller(info), endpointId, first)

    @mutation.field("createWebhookEndpoint")
    async def resolve_create(
        _: None, info: GraphQLResolveInfo, teamId: str, url: str, eventTypes: list[str]
    ) -> EndpointView:
        return await webhooks.create_endpoint(caller(info), url, eventTypes, team_id=teamId)

    @mutation.field("updateWebhookEndpoint")
    async def resolve_update(
        _: None,
        info: GraphQLResolveInfo,
        id: str,
        url: str | None = None,
        eventTypes: list[str] | None = None,
        enabled: bool | None = None,
    ) -> EndpointView:
        return await webhooks.update_endpoint(
            caller(info), id, url=url, event_types=eventTypes, enabled=enabled
        )

    @mutation.field("deleteWebhookEndpoint")
    async def resolve_delete(_: None, info: GraphQLResolveInfo, id: str) -> bool:
        return await webhooks.delete_endpoint(caller(info), id)

    @mutation.field("rotateWebhookSecret")
    async def resolve_rotate(_: None, info: GraphQLResolveInfo, id: str) -> EndpointView:
        return await webhooks.rotate_secret(caller(info), id)

    @mutation.field("replayWebhooks")
    async def resolve_replay(
        _: None, info: GraphQLResolveInfo, endpointId: str, since: datetime
    ) -> ReplayView:
        return await webhooks.replay(caller(info), endpointId, since)

    for name, attribute in (
        ("teamId", "team_id"),
        ("eventTypes", "event_types"),
        ("disabledReason", "disabled_reason"),
        ("createdAt", "created_at"),
    ):
        endpoint.set_alias(name, attribute)
    for name, attribute in (
        ("eventId", "event_id"),
        ("eventType", "event_type"),
        ("responseCode", "response_code"),
        ("latencyMs", "latency_ms"),
        ("createdAt", "created_at"),
        ("lastAttemptAt", "last_attempt_at"),
        ("nextAttemptAt", "next_attempt_at"),
    ):
        delivery.set_alias(name, attribute)
    replay.set_alias("endpointId", "endpoint_id")
    return [query, mutation, endpoint, delivery, replay]
