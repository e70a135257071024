"""Tracking and product questions: resolvers over the analytics facade."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ariadne import EnumType, MutationType, QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.analytics import (
    ActiveUsers,
    AnalyticsService,
    EventCount,
    FunnelStep,
    Period,
    Usage,
)


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    analytics: AnalyticsService = services.analytics
    query = QueryType()
    mutation = MutationType()

    @query.field("eventCounts")
    async def resolve_event_counts(
        _: None,
        info: GraphQLResolveInfo,
        names: list[str] | None = None,
        since: datetime | None = None,
        team_id: str | None = None,
    ) -> list[EventCount]:
        return await analytics.event_counts(caller(info), names, since, team_id=team_id)

    @query.field("activeUsers")
    async def resolve_active_users(
        _: None, info: GraphQLResolveInfo, period: Period, team_id: str | None = None, **args: Any
    ) -> list[ActiveUsers]:
        return await analytics.active_users(
            caller(info), period, args["from"], args["to"], team_id=team_id
        )

    @query.field("funnel")
    async def resolve_funnel(
        _: None,
        info: GraphQLResolveInfo,
        steps: list[str],
        window: int = 604800,
        since: datetime | None = None,
        team_id: str | None = None,
    ) -> list[FunnelStep]:
        return await analytics.funnel(caller(info), steps, window, since, team_id=team_id)

    @query.field("usage")
    async def resolve_usage(
        _: None,
        info: GraphQLResolveInfo,
        period: Period = Period.DAY,
        team_id: str | None = None,
        **args: Any,
    ) -> list[Usage]:
        return await analytics.usage(
            caller(info), period, args.get("from"), args.get("to"), team_id=team_id
        )

    @mutation.field("track")
    async def resolve_track(
        _: None, info: GraphQLResolveInfo, name: str, properties: Any = None
    ) -> bool:
        await analytics.track(caller(info), name, properties)
        return True

    return [query, mutation, EnumType("AnalyticsPeriod", Period)]
