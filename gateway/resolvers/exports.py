"""`exportMyData`: a signed, expiring link to the caller's data export."""

from __future__ import annotations

from ariadne import MutationType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.exports import DataExports, ExportLink


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    exports: DataExports = services.exports
    mutation = MutationType()

    @mutation.field("exportMyData")
    async def resolve_export_my_data(_: None, info: GraphQLResolveInfo) -> ExportLink:
        return await exports.request(caller(info))

    return [mutation]
