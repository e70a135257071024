"""Every role against every guarded facade operation, found by its guard."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import Services
from haunted.runtime import Haunted
from services.analytics import AnalyticsService, Period
from services.audit import AuditService
from services.auth import ApiKeyService, TeamService
from services.errors import DomainError
from services.principal import ROLE_PERMISSIONS, ROLES, Principal, guarded_permission
from services.webhooks import WebhooksService
from tests.conftest import Server, register, unique_email
from tests.services.auth.conftest import RoleTeam, principal_of, snapshot

# The issue's table, written out: the code must match it exactly.
VIEWER = {"team:read", "billing:read", "flags:read", "analytics:read"}
MEMBER = VIEWER | {"llm:call"}
ADMIN = MEMBER | {"team:invite", "team:manage", "billing:manage", "audit:read", "webhooks:manage"}
OWNER = ADMIN | {"team:delete"}
ISSUE_MATRIX = {"viewer": VIEWER, "member": MEMBER, "admin": ADMIN, "owner": OWNER}

FACADES = (TeamService, ApiKeyService, AnalyticsService, AuditService, WebhooksService)

WEEK_START = datetime(2026, 1, 5, tzinfo=UTC)

Call = Callable[[Services, Principal, RoleTeam], Awaitable[object]]

# How to call each guarded operation in the shared team. Allowed calls must leave the
# other roles' members in place (the matrix runs in one team), hence a stranger to
# remove, a no-op role change, a missing key to revoke; `leave` runs last per role.
CALLS: dict[str, Call] = {
    "TeamService.members": lambda s, p, t: s.teams.members(p, team_id=t.team_id),
    "TeamService.invite": lambda s, p, t: s.teams.invite(
        p, unique_email(), "viewer", team_id=t.team_id
    ),
    "TeamService.change_role": lambda s, p, t: s.teams.change_role(
        p, t["viewer"].user_id, "viewer", team_id=t.team_id
    ),
    "TeamService.remove_member": lambda s, p, t: s.teams.remove_member(
        p, str(uuid.uuid4()), team_id=t.team_id
    ),
    "TeamService.leave": lambda s, p, t: s.teams.leave(p, team_id=t.team_id),
    "TeamService.invites": lambda s, p, t: s.teams.invites(p, team_id=t.team_id),
    "TeamService.require_two_factor": lambda s, p, t: s.teams.require_two_factor(
        p, False, team_id=t.team_id
    ),
    "TeamService._revoke_invite": lambda s, p, t: s.teams._revoke_invite(
        p, "no-such-invite", "member", team_id=t.team_id
    ),
    "ApiKeyService.create": lambda s, p, t: s.api_keys.create(
        p, "matrix", ["team:read"], team_id=t.team_id
    ),
    "ApiKeyService.list": lambda s, p, t: s.api_keys.list(p, team_id=t.team_id),
    "ApiKeyService._revoke": lambda s, p, t: s.api_keys._revoke(
        p, "no-such-key", team_id=t.team_id
    ),
    "AnalyticsService.event_counts": lambda s, p, t: s.analytics.event_counts(p, team_id=t.team_id),
    "AnalyticsService.active_users": lambda s, p, t: s.analytics.active_users(
        p, Period.DAY, WEEK_START, WEEK_START + timedelta(days=7), team_id=t.team_id
    ),
    "AnalyticsService.funnel": lambda s, p, t: s.analytics.funnel(
        p, ["user.registered", "user.logged_in"], team_id=t.team_id
    ),
    "AnalyticsService.usage": lambda s, p, t: s.analytics.usage(p, team_id=t.team_id),
    "AuditService.log": lambda s, p, t: s.audit.log(p, team_id=t.team_id),
    "WebhooksService.create_endpoint": lambda s, p, t: s.webhooks.create_endpoint(
        p, "http://127.0.0.1:9/hook", ["team.created"], team_id=t.team_id
    ),
    "WebhooksService.endpoints": lambda s, p, t: s.webhooks.endpoints(p, team_id=t.team_id),
}
LAST = ("TeamService.leave",)


def all_facades(app: Haunted) -> dict[str, type]:
    """Facade name -> facade class: every facade the gateway calls, as declared."""
    return {name: type(facade) for name, facade in app.services.items()}


def guarded_operations(facades: Iterable[type] = FACADES) -> dict[str, str]:
    """Class.method -> permission, for every method carrying the guard."""
    found: dict[str, str] = {}
    for facade in facades:
        for name, method in inspect.getmembers(facade, inspect.isfunction):
            permission = guarded_permission(method)
            if permission is not None:
                found[f"{facade.__name__}.{name}"] = permission
    return found


def test_role_permissions_are_the_issues_matrix() -> None:
    assert tuple(ROLES) == ("owner", "admin", "member", "viewer")
    assert {role: set(perms) for role, perms in ROLE_PERMISSIONS.items()} == ISSUE_MATRIX


def test_every_guard_names_a_permission_some_role_grants(facades: Haunted) -> None:
    """A misspelt permission would lock every role out of an operation."""
    classes = all_facades(facades)
    assert set(FACADES) <= set(classes.values())
    everywhere = guarded_operations(classes.values())
    assert {name: perm for name, perm in everywhere.items() if perm not in OWNER} == {}


def test_every_guarded_operation_is_in_the_matrix() -> None:
    """A newly guarded method fails here until it has a call in CALLS."""
    operations = guarded_operations()
    assert set(operations) == set(CALLS)
    assert set(operations.values()) <= OWNER
    assert {"team:read", "team:invite", "team:manage", "analytics:read"} <= set(operations.values())


async def test_every_role_against_every_guarded_operation(
    facades: Haunted, role_team: RoleTeam
) -> None:
    operations = guarded_operations()
    order = sorted(operations, key=lambda name: (name in LAST, name))
    mismatches: list[str] = []
    anonymous: Any = None
    for name in order:
        try:
            await CALLS[name](facades.services, anonymous, role_team)
            code = "OK"
        except DomainError as error:
            code = error.code
        if code != "UNAUTHENTICATED":
            mismatches.append(f"no principal {name}: {code}")
    for role in ROLES:
        principal = await principal_of(facades, role_team[role])
        assert principal.teams[role_team.team_id] == role
        for name in order:
            allowed = operations[name] in ISSUE_MATRIX[role]
            before = None if allowed else await snapshot(facades)
            try:
                await CALLS[name](facades.services, principal, role_team)
                code = "OK"
            except DomainError as error:
                code = error.code
            if (code == "FORBIDDEN") == allowed:
                mismatches.append(f"{role} {name} ({operations[name]}): {code}")
            if not allowed:
                assert await snapshot(facades) == before, f"{role} {name} changed rows"
    assert mismatches == []


async def test_other_facades_refuse_every_role_without_the_permission(
    facades: Haunted, role_team: RoleTeam
) -> None:
    """The facades whose allowed calls reach outside (Stripe, LLM providers): the
    refusals only, which the guard decides before the method runs."""
    mismatches: list[str] = []
    principals = {role: await principal_of(facades, role_team[role]) for role in ROLES}
    before = await snapshot(facades)
    for field, facade in all_facades(facades).items():
        if facade in FACADES:
            continue
        for name, permission in guarded_operations([facade]).items():
            method = getattr(getattr(facades.services, field), name.split(".")[1])
            parameters = list(inspect.signature(method).parameters.values())[1:]
            filler = [None for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
            for role in ROLES:
                if permission in ISSUE_MATRIX[role]:
                    continue
                try:
                    await method(principals[role], *filler, team_id=role_team.team_id)
                    code = "OK"
                except DomainError as error:
                    code = error.code
                if code != "FORBIDDEN":
                    mismatches.append(f"{role} {name} ({permission}): {code}")
    assert mismatches == []
    assert await snapshot(facades) == before


GUARDED_DOCUMENTS = {
    "createTeam": 'mutation { createTeam(name: "x") { id } }',
    "inviteMember": (
        'mutation($t: ID!) { inviteMember(teamId: $t, email: "a@example.com", role: "viewer")'
        " { token } }"
    ),
    "acceptInvite": 'mutation { acceptInvite(token: "hi_x") { role } }',
    "changeRole": 'mutation($t: ID!, $u: ID!) { changeRole(teamId: $t, userId: $u, role: "admin")'
    " { role } }",
    "removeMember": "mutation($t: ID!, $u: ID!) { removeMember(teamId: $t, userId: $u) }",
    "team": "query($t: ID!) { team(id: $t) { id members { userId } } }",
    "apiKeys": "query($t: ID) { apiKeys(teamId: $t) { id } }",
    "createApiKey": 'mutation { createApiKey(name: "k", permissions: ["team:read"]) { key } }',
    "revokeApiKey": 'mutation { revokeApiKey(id: "k") }',
    "eventCounts": "query($t: ID) { eventCounts(teamId: $t) { name count } }",
}


async def test_gateway_without_a_token_is_unauthenticated(server: Server) -> None:
    owner = await register(server)
    variables = {"t": owner["user"]["memberships"][0]["team"]["id"], "u": owner["user"]["id"]}
    for field, document in GUARDED_DOCUMENTS.items():
        used = {k: v for k, v in variables.items() if f"${k}" in document}
        body = await server.graphql(document, used)
        codes = [error["extensions"]["code"] for error in body.get("errors", [])]
        assert codes == ["UNAUTHENTICATED"], (field, body)
