"""Accounts, sessions, teams and API keys: resolvers over the auth facades."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ariadne import MutationType, ObjectType, QueryType, SchemaBindable
from graphql import FieldNode, GraphQLResolveInfo
from starlette.requests import HTTPConnection

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.auth import (
    ApiKeyService,
    ApiKeyView,
    AuthResult,
    AuthService,
    ClientInfo,
    InvitePreviewView,
    MembershipView,
    MemberView,
    SessionView,
    TeamService,
    UserView,
    normalize_email,
)
from services.errors import NotFound
from services.principal import Principal


def client_info(info: GraphQLResolveInfo) -> ClientInfo:
    request: HTTPConnection | None = info.context.get("request")
    if request is None:
        return ClientInfo()
    return ClientInfo(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def _selects_only_id(info: GraphQLResolveInfo) -> bool:
    selection_set = info.field_nodes[0].selection_set
    return selection_set is not None and all(
        isinstance(node, FieldNode) and node.name.value in ("id", "__typename")
        for node in selection_set.selections
    )


def _membership(view: MembershipView) -> dict[str, Any]:
    return {"team": {"id": view.team_id, "name": view.team_name}, "role": view.role}


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    auth: AuthService = services.auth
    teams: TeamService = services.teams
    api_keys: ApiKeyService = services.api_keys
    query, mutation = QueryType(), MutationType()
    user, team = ObjectType("User"), ObjectType("Team")

    @query.field("me")
    async def resolve_me(_: None, info: GraphQLResolveInfo) -> UserView | None:
        principal: Principal | None = info.context.get("principal")
        if principal is None:
            return None
        if principal.api_key_id is None and _selects_only_id(info):
            # The token already proved who this is: no database read for `me { id }`.
            return UserView(principal.user_id, "", [])
        return await auth.me(principal)

    @query.field("sessions")
    async def resolve_sessions(_: None, info: GraphQLResolveInfo) -> list[SessionView]:
        return await auth.sessions(caller(info))

    @query.field("team")
    async def resolve_team(_: None, info: GraphQLResolveInfo, id: str) -> dict[str, Any]:
        principal = caller(info)
        if id not in principal.teams:
            raise NotFound("no such team")
        view = await auth.me(principal)
        name = next((m.team_name for m in view.memberships if m.team_id == id), "") if view else ""
        return {"id": id, "name": name}

    @team.field("members")
    async def resolve_members(obj: dict[str, Any], info: GraphQLResolveInfo) -> list[MemberView]:
        return await teams.members(caller(info), team_id=obj["id"])

    @query.field("apiKeys")
    async def resolve_api_keys(
        _: None, info: GraphQLResolveInfo, team_id: str | None = None
    ) -> list[ApiKeyView]:
        return await api_keys.list(caller(info), team_id=team_id)

    @mutation.field("register")
    async def resolve_register(
        _: None, info: GraphQLResolveInfo, email: str, password: str, team_name: str | None = None
    ) -> AuthResult:
        return await auth.register(email, password, team_name, client_info(info))

    @mutation.field("signUp")
    async def resolve_sign_up(
        _: None, info: GraphQLResolveInfo, email: str, password: str, team_name: str | None = None
    ) -> bool:
        await auth.sign_up(email, password, team_name, client_info(info))
        return True

    @mutation.field("verifyEmail")
    async def resolve_verify_email(_: None, info: GraphQLResolveInfo, token: str) -> bool:
        await auth.verify_email(token)
        return True

    @mutation.field("requestPasswordReset")
    async def resolve_request_password_reset(_: None, info: GraphQLResolveInfo, email: str) -> bool:
        await auth.request_password_reset(email, client_info(info))
        return True

    @mutation.field("resetPassword")
    async def resolve_reset_password(
        _: None, info: GraphQLResolveInfo, token: str, new_password: str
    ) -> bool:
        await auth.reset_password(token, new_password, client_info(info))
        return True

    @mutation.field("changePassword")
    async def resolve_change_password(
        _: None, info: GraphQLResolveInfo, current: str, new: str
    ) -> bool:
        await auth.change_password(caller(info), current, new)
        return True

    @mutation.field("deleteAccount")
    async def resolve_delete_account(_: None, info: GraphQLResolveInfo, password: str) -> bool:
        await auth.delete_account(caller(info), password)
        return True

    @mutation.field("loginSecondFactor")
    async def resolve_login_second_factor(
        _: None, info: GraphQLResolveInfo, challenge: str, code: str
    ) -> AuthResult:
        return await auth.login_second_factor(challenge, code, client_info(info))

    @mutation.field("enrolTwoFactor")
    async def resolve_enrol_two_factor(_: None, info: GraphQLResolveInfo) -> dict[str, str]:
        enrolment = await auth.two_factor.enrol(caller(info))
        return {"secret": enrolment.secret, "uri": enrolment.uri}

    @mutation.field("confirmTwoFactor")
    async def resolve_confirm_two_factor(_: None, info: GraphQLResolveInfo, code: str) -> list[str]:
        return await auth.two_factor.confirm(caller(info), code)

    @mutation.field("requireTwoFactor")
    async def resolve_require_two_factor(
        _: None, info: GraphQLResolveInfo, team_id: str, required: bool
    ) -> bool:
        return await teams.require_two_factor(caller(info), required, team_id=team_id)

    @mutation.field("disableTwoFactor")
    async def resolve_disable_two_factor(_: None, info: GraphQLResolveInfo, code: str) -> bool:
        await auth.two_factor.disable(caller(info), code)
        return True

    @mutation.field("login")
    async def resolve_login(
        _: None, info: GraphQLResolveInfo, email: str, password: str
    ) -> AuthResult:
        return await auth.login(email, password, client_info(info))

    @mutation.field("refreshToken")
    async def resolve_refresh(_: None, info: GraphQLResolveInfo, refresh_token: str) -> AuthResult:
        return await auth.refresh(refresh_token, client_info(info))

    @mutation.field("logout")
    async def resolve_logout(_: None, info: GraphQLResolveInfo) -> bool:
        return await auth.logout(caller(info))

    @mutation.field("revokeSession")
    async def resolve_revoke_session(_: None, info: GraphQLResolveInfo, id: str) -> bool:
        return await auth.revoke_session(caller(info), id)

    @mutation.field("createTeam")
    async def resolve_create_team(_: None, info: GraphQLResolveInfo, name: str) -> dict[str, Any]:
        return asdict(await teams.create_team(caller(info), name))

    @mutation.field("inviteMember")
    async def resolve_invite(
        _: None, info: GraphQLResolveInfo, team_id: str, email: str, role: str
    ) -> dict[str, Any]:
        invite = await teams.invite(caller(info), email, role, team_id=team_id)
        return {
            "id": invite.id,
            "team_id": invite.team_id,
            "role": invite.role,
            "expires_at": invite.expires_at,
            "token": invite.token,
            "email": normalize_email(email),
            "invited_by": caller(info).user_id,
        }

    @query.field("invites")
    async def resolve_invites(
        _: None, info: GraphQLResolveInfo, team_id: str
    ) -> list[dict[str, Any]]:
        return [
            {
                "id": invite.id,
                "team_id": invite.team_id,
                "role": invite.role,
                "expires_at": invite.expires_at,
                "token": None,
                "email": invite.email,
                "invited_by": invite.invited_by,
            }
            for invite in await teams.invites(caller(info), team_id=team_id)
        ]

    @mutation.field("revokeInvite")
    async def resolve_revoke_invite(_: None, info: GraphQLResolveInfo, id: str) -> bool:
        return await teams.revoke_invite(caller(info), id)

    @query.field("invite")
    async def resolve_invite_preview(
        _: None, info: GraphQLResolveInfo, token: str
    ) -> InvitePreviewView:
        return await teams.preview_invite(token)

    @mutation.field("acceptInvite")
    async def resolve_accept(_: None, info: GraphQLResolveInfo, token: str) -> dict[str, Any]:
        return _membership(await teams.accept_invite(caller(info), token))

    @mutation.field("changeRole")
    async def resolve_change_role(
        _: None, info: GraphQLResolveInfo, team_id: str, user_id: str, role: str
    ) -> dict[str, Any]:
        return _membership(await teams.change_role(caller(info), user_id, role, team_id=team_id))

    @mutation.field("removeMember")
    async def resolve_remove_member(
        _: None, info: GraphQLResolveInfo, team_id: str, user_id: str
    ) -> bool:
        principal = caller(info)
        if user_id == principal.user_id:
            return await teams.leave(principal, team_id=team_id)
        return await teams.remove_member(principal, user_id, team_id=team_id)

    @mutation.field("createApiKey")
    async def resolve_create_api_key(
        _: None,
        info: GraphQLResolveInfo,
        name: str,
        permissions: list[str],
        team_id: str | None = None,
    ) -> dict[str, Any]:
        key, view = await api_keys.create(caller(info), name, permissions, team_id=team_id)
        return {"key": key, "api_key": view}

    @mutation.field("revokeApiKey")
    async def resolve_revoke_api_key(_: None, info: GraphQLResolveInfo, id: str) -> bool:
        return await api_keys.revoke(caller(info), id)

    @user.field("memberships")
    def resolve_memberships(obj: UserView, info: GraphQLResolveInfo) -> list[dict[str, Any]]:
        return [_membership(m) for m in obj.memberships]

    @user.field("permissions")
    def resolve_permissions(obj: UserView, info: GraphQLResolveInfo) -> list[str]:
        # From the user's own memberships, so a fresh register/login payload has them too.
        teams_of_user = {m.team_id: m.role for m in obj.memberships}
        return sorted(Principal(user_id=obj.id, session_id="", teams=teams_of_user).permissions())

    return [query, mutation, user, team]
