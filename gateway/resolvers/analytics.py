"""Product questions: resolvers over the analytics facade."""

from __future__ import annotations

from datetime import datetime

from ariadne import QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.resolvers.common import caller
from services.analytics import AnalyticsService, EventCount


def bindables(analytics: AnalyticsService) -> list[SchemaBindable]:
    query = QueryType()

    @query.field("eventCounts")
    async def resolve_event_counts(
        _: None,
        info: GraphQLResolveInfo,
        names: list[str] | None = None,
        since: datetime | None = None,
        teamId: str | None = None,
    ) -> list[EventCount]:
        return await analytics.event_counts(caller(info), names, since, team_id=teamId)

    return [query]
