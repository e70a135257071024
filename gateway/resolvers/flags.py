"""Feature flags: resolvers over the flags facade (evaluated in-process, no I/O per call)."""

from __future__ import annotations

from ariadne import QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.flags import FlagsService, FlagState, FlagVariant


def _remote_address(info: GraphQLResolveInfo) -> str | None:
    request = info.context.get("request")
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    flags: FlagsService = services.flags
    query = QueryType()

    @query.field("isFeatureEnabled")
    async def resolve_is_feature_enabled(_: None, info: GraphQLResolveInfo, name: str) -> bool:
        return await flags.is_enabled(caller(info), name, remote_address=_remote_address(info))

    @query.field("featureVariant")
    async def resolve_feature_variant(_: None, info: GraphQLResolveInfo, name: str) -> FlagVariant:
        return await flags.variant(caller(info), name, remote_address=_remote_address(info))

    @query.field("flags")
    async def resolve_flags(
        _: None, info: GraphQLResolveInfo, team_id: str | None = None
    ) -> list[FlagState]:
        return await flags.states(
            caller(info), team_id=team_id, remote_address=_remote_address(info)
        )

    return [query]
