"""The audit log: resolvers over the audit facade."""

from __future__ import annotations

from ariadne import QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.audit import AuditLogPage, AuditService


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    audit: AuditService = services.audit
    query = QueryType()

    @query.field("auditLog")
    async def resolve_audit_log(
        _: None, info: GraphQLResolveInfo, team_id: str, first: int = 50, after: str | None = None
    ) -> AuditLogPage:
        return await audit.log(caller(info), first, after, team_id=team_id)

    return [query]
