"""Accounts, sessions and teams: resolvers over the auth facade."""

from __future__ import annotations

from typing import Any

from ariadne import MutationType, ObjectType, QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.resolvers.common import caller
from services.auth import AuthResult, AuthService, UserView
from services.principal import Principal


def _auth_payload(result: AuthResult) -> dict[str, Any]:
    return {"token": result.token, "expiresAt": result.expires_at, "user": result.user}


def bindables(auth: AuthService) -> list[SchemaBindable]:
    query, mutation, user = QueryType(), MutationType(), ObjectType("User")

    @query.field("me")
    async def resolve_me(_: None, info: GraphQLResolveInfo) -> UserView | None:
        principal = info.context.get("principal")
        return await auth.me(principal) if principal else None

    @mutation.field("register")
    async def resolve_register(
        _: None,
        info: GraphQLResolveInfo,
        email: str,
        password: str,
        teamName: str | None = None,
    ) -> dict[str, Any]:
        return _auth_payload(await auth.register(email, password, teamName))

    @mutation.field("login")
    async def resolve_login(
        _: None, info: GraphQLResolveInfo, email: str, password: str
    ) -> dict[str, Any]:
        return _auth_payload(await auth.login(email, password))

    @mutation.field("logout")
    async def resolve_logout(_: None, info: GraphQLResolveInfo) -> bool:
        return await auth.logout(caller(info))

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

    return [query, mutation, user]
