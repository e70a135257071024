"""The inbox and presence: resolvers over the notifications facade and the push hub."""

from __future__ import annotations

from ariadne import MutationType, QueryType, SchemaBindable
from graphql import GraphQLArgument, GraphQLID, GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema

from gateway.graphql import Services
from gateway.push import OnlineMember, PushHub
from gateway.resolvers.common import caller
from services.notifications import NotificationsService, NotificationView


class NotificationsCursor(SchemaBindable):
    """Adds `after: ID` to the contract's Query.notifications (an SDL extension
    cannot add an argument to an existing field; the contract allows adding one)."""

    def bind_to_schema(self, schema: GraphQLSchema) -> None:
        query = schema.query_type
        assert isinstance(query, GraphQLObjectType)
        query.fields["notifications"].args.setdefault(
            "after",
            GraphQLArgument(
                GraphQLID,
                description="The id of the last notification of the previous page: "
                "the page starts just below it.",
            ),
        )


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    notifications: NotificationsService = services.notifications
    query, mutation = QueryType(), MutationType()

    @query.field("notifications")
    async def resolve_notifications(
        _: None,
        info: GraphQLResolveInfo,
        first: int | None = 20,
        unread_only: bool | None = False,
        after: str | None = None,
    ) -> list[NotificationView]:
        # An explicit null takes the default (the fuzz found `first: null` an INTERNAL).
        page = await notifications.notifications(
            caller(info), 20 if first is None else first, bool(unread_only), after
        )
        return page

    @query.field("unreadCount")
    async def resolve_unread_count(_: None, info: GraphQLResolveInfo) -> int:
        return await notifications.unread_count(caller(info))

    @query.field("onlineMembers")
    async def resolve_online_members(
        _: None, info: GraphQLResolveInfo, team_id: str | None = None
    ) -> list[OnlineMember]:
        team_id = caller(info).require("team:read", team_id)
        return await hub.presence.online(team_id)

    @mutation.field("markNotificationRead")
    async def resolve_mark_read(_: None, info: GraphQLResolveInfo, id: str) -> bool:
        return await notifications.mark_read(caller(info), id)

    @mutation.field("markAllNotificationsRead")
    async def resolve_mark_all_read(_: None, info: GraphQLResolveInfo) -> int:
        return await notifications.mark_all_read(caller(info))

    return [query, mutation, NotificationsCursor()]
