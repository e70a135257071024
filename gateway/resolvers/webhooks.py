"""Customer webhooks: resolvers over the webhooks facade."""

from __future__ import annotations

from datetime import datetime

from ariadne import MutationType, QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.webhooks import DeliveryView, EndpointView, ReplayView, WebhooksService


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    webhooks: WebhooksService = services.webhooks
    query = QueryType()
    mutation = MutationType()

    @query.field("webhookEndpoints")
    async def resolve_endpoints(
        _: None, info: GraphQLResolveInfo, team_id: str | None = None
    ) -> list[EndpointView]:
        return await webhooks.endpoints(caller(info), team_id=team_id)

    @query.field("webhookDeliveries")
    async def resolve_deliveries(
        _: None, info: GraphQLResolveInfo, endpoint_id: str, first: int = 50
    ) -> list[DeliveryView]:
        return await webhooks.deliveries(caller(info), endpoint_id, first)

    @mutation.field("createWebhookEndpoint")
    async def resolve_create(
        _: None, info: GraphQLResolveInfo, team_id: str, url: str, event_types: list[str]
    ) -> EndpointView:
        return await webhooks.create_endpoint(caller(info), url, event_types, team_id=team_id)

    @mutation.field("updateWebhookEndpoint")
    async def resolve_update(
        _: None,
        info: GraphQLResolveInfo,
        id: str,
        url: str | None = None,
        event_types: list[str] | None = None,
        enabled: bool | None = None,
    ) -> EndpointView:
        return await webhooks.update_endpoint(
            caller(info), id, url=url, event_types=event_types, enabled=enabled
        )

    @mutation.field("deleteWebhookEndpoint")
    async def resolve_delete(_: None, info: GraphQLResolveInfo, id: str) -> bool:
        return await webhooks.delete_endpoint(caller(info), id)

    @mutation.field("rotateWebhookSecret")
    async def resolve_rotate(_: None, info: GraphQLResolveInfo, id: str) -> EndpointView:
        return await webhooks.rotate_secret(caller(info), id)

    @mutation.field("replayWebhooks")
    async def resolve_replay(
        _: None, info: GraphQLResolveInfo, endpoint_id: str, since: datetime
    ) -> ReplayView:
        return await webhooks.replay(caller(info), endpoint_id, since)

    return [query, mutation]
