"""The audit log: resolvers over the audit facade."""

from __future__ import annotations

from ariadne import ObjectType, QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.audit import AuditLogPage, AuditService


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    audit: AuditService = services.audit
    query = QueryType()
    page = ObjectType("AuditLogPage")
    entry = ObjectType("AuditEntry")

    @query.field("auditLog")
    async def resolve_audit_log(
        _: None, info: GraphQLResolveInfo, teamId: str, first: int = 50, after: str | None = None
    ) -> AuditLogPage:
        return await audit.log(caller(info), first, after, team_id=teamId)

    page.set_alias("nextCursor", "next_cursor")
    entry.set_alias("actorId", "actor_id")
    return [query, page, entry]
