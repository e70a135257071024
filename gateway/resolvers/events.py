"""Subscriptions: the events a caller may see, fed by this process's fan-out consumer."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from ariadne import SchemaBindable, SubscriptionType
from graphql import GraphQLResolveInfo

from gateway.push import PushHub
from gateway.resolvers.common import caller


def bindables(hub: PushHub) -> list[SchemaBindable]:
    subscription = SubscriptionType()

    @subscription.source("events")
    async def events_source(
        _: None, info: GraphQLResolveInfo, types: list[str] | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        async for envelope in hub.listen(caller(info), types):
            yield envelope.to_push()

    @subscription.field("events")
    def events_field(event: dict[str, Any], info: GraphQLResolveInfo, **_: Any) -> dict[str, Any]:
        return event

    @subscription.source("notifications")
    async def notifications_source(
        _: None, info: GraphQLResolveInfo
    ) -> AsyncGenerator[dict[str, Any], None]:
        async for envelope in hub.listen(caller(info), ["notification.created"]):
            data = envelope.data
            yield {
                "id": data["notification_id"],
                "type": data["type"],
                "title": data["title"],
                "body": data.get("body"),
                "data": data.get("data"),
                "createdAt": data["created_at"],
                "readAt": None,
            }

    @subscription.field("notifications")
    def notifications_field(item: dict[str, Any], info: GraphQLResolveInfo) -> dict[str, Any]:
        return item

    return [subscription]
