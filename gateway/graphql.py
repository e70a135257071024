"""The GraphQL API of schema.graphql: thin resolvers over the service facades."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

from ariadne import (
    MutationType,
    ObjectType,
    QueryType,
    ScalarType,
    SubscriptionType,
    make_executable_schema,
)
from graphql import GraphQLResolveInfo, GraphQLSchema

from gateway.push import PushHub
from services.analytics import AnalyticsService
from services.auth import AuthResult, AuthService, UserView
from services.errors import BadUserInput, DomainError, Unauthenticated
from services.principal import Principal


@dataclass(frozen=True, slots=True)
class Services:
    """The facades the gateway calls, built once by the composition root."""

    auth: AuthService
    analytics: AnalyticsService


class NotAvailable(DomainError):
    """A contract field whose service has not been built into this release yet."""

    code = "INTERNAL"


def type_defs() -> str:
    return (files("gateway") / "schema.graphql").read_text()


def caller(info: GraphQLResolveInfo) -> Principal:
    """The authenticated caller, or UNAUTHENTICATED (naming why the token was refused)."""
    principal: Principal | None = info.context.get("principal")
    if principal is None:
        raise info.context.get("auth_error") or Unauthenticated("authentication required")
    return principal


datetime_scalar = ScalarType("DateTime")


@datetime_scalar.serializer
def _serialize_datetime(value: datetime | str) -> str:
    if isinstance(value, str):  # already RFC 3339, as events carry it
        return value
    return value.isoformat().replace("+00:00", "Z")


@datetime_scalar.value_parser
def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise BadUserInput("DateTime must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise BadUserInput("DateTime must be an RFC 3339 string") from error
    if parsed.tzinfo is None:
        raise BadUserInput("DateTime must carry a time zone")
    return parsed


json_scalar = ScalarType("JSON")


def _auth_payload(result: AuthResult) -> dict[str, Any]:
    return {"token": result.token, "expiresAt": result.expires_at, "user": result.user}


def build_schema(services: Services, hub: PushHub) -> GraphQLSchema:
    query, mutation, subscription = QueryType(), MutationType(), SubscriptionType()

    @query.field("me")
    async def resolve_me(_: None, info: GraphQLResolveInfo) -> UserView | None:
        principal = info.context.get("principal")
        return await services.auth.me(principal) if principal else None

    @query.field("eventCounts")
    async def resolve_event_counts(
        _: None,
        info: GraphQLResolveInfo,
        names: list[str] | None = None,
        since: datetime | None = None,
        teamId: str | None = None,
    ) -> list[Any]:
        return await services.analytics.event_counts(caller(info), names, since, teamId)

    @mutation.field("register")
    async def resolve_register(
        _: None,
        info: GraphQLResolveInfo,
        email: str,
        password: str,
        teamName: str | None = None,
    ) -> dict[str, Any]:
        return _auth_payload(await services.auth.register(email, password, teamName))

    @mutation.field("login")
    async def resolve_login(
        _: None, info: GraphQLResolveInfo, email: str, password: str
    ) -> dict[str, Any]:
        return _auth_payload(await services.auth.login(email, password))

    @mutation.field("logout")
    async def resolve_logout(_: None, info: GraphQLResolveInfo) -> bool:
        return await services.auth.logout(caller(info))

    for name in (
        "plans",
        "mySubscription",
        "isFeatureEnabled",
        "featureVariant",
        "prompts",
        "notifications",
    ):
        query.set_field(name, _not_available)
    for name in ("createCheckoutSession", "callPrompt", "track", "markNotificationRead"):
        mutation.set_field(name, _not_available)

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
    async def notifications_source(_: None, info: GraphQLResolveInfo) -> AsyncGenerator[Any, None]:
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

    user = _user_type()
    return make_executable_schema(
        type_defs(), query, mutation, subscription, user, datetime_scalar, json_scalar
    )


def _user_type() -> ObjectType:
    user = ObjectType("User")

    @user.field("memberships")
    def resolve_memberships(obj: UserView, info: GraphQLResolveInfo) -> list[dict[str, Any]]:
        return [
            {"team": {"id": m.team_id, "name": m.team_name}, "role": m.role}
            for m in obj.memberships
        ]

    @user.field("permissions")
    def resolve_permissions(obj: UserView, info: GraphQLResolveInfo) -> list[str]:
        # From the user's own memberships, so a fresh register/login payload has them too.
        teams = {m.team_id: m.role for m in obj.memberships}
        return sorted(Principal(user_id=obj.id, session_id="", teams=teams).permissions())

    return user


def _not_available(*_: Any, **__: Any) -> None:
    raise NotAvailable("this field's service is not built into this release yet")
