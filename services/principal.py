"""Who is calling: the verified identity that every facade checks permissions against.

Auth builds it from a token (or an API key) and its session; the other
services only read it, so the role vocabulary lives here, beside the one
declarative guard (`requires`) that facades put on their guarded methods.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from services.errors import Forbidden, SecondFactorRequired, Unauthenticated

ROLES = ("owner", "admin", "member", "viewer")

_VIEWER = frozenset({"team:read", "billing:read", "flags:read", "analytics:read"})
_MEMBER = _VIEWER | {"llm:call"}
_ADMIN = _MEMBER | {
    "team:invite",
    "team:manage",
    "billing:manage",
    "audit:read",
    "webhooks:manage",
}
_OWNER = _ADMIN | {"team:delete"}

# resource:action strings each role grants within its team.
ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "owner": _OWNER,
    "admin": _ADMIN,
    "member": _MEMBER,
    "viewer": _VIEWER,
}
ALL_PERMISSIONS = _OWNER


@dataclass(frozen=True, slots=True)
class Principal:
    """A user in a session, or an API key acting for one team with chosen permissions."""

    user_id: str
    session_id: str
    teams: Mapping[str, str] = field(default_factory=dict)  # team id -> role
    granted: frozenset[str] | None = None  # API keys: exactly these, in their team
    api_key_id: str | None = None
    # Teams that require a second factor the user has not turned on: nothing guarded
    # runs in them until they do.
    second_factor_missing: frozenset[str] = frozenset()

    @property
    def default_team_id(self) -> str | None:
        owned = [team for team, role in self.teams.items() if role == "owner"]
        candidates = owned or sorted(self.teams)
        return candidates[0] if candidates else None

    def permissions(self, team_id: str | None = None) -> frozenset[str]:
        team = team_id or self.default_team_id
        if team is None or team not in self.teams:
            return frozenset()
        if self.granted is not None:
            return self.granted
        return ROLE_PERMISSIONS.get(self.teams[team], frozenset())

    def require(self, permission: str, team_id: str | None = None) -> str:
        """Returns the team the permission holds in, or raises Forbidden."""
        team = team_id or self.default_team_id
        if team is None or permission not in self.permissions(team):
            raise Forbidden(f"missing permission {permission}", permission=permission)
        if team in self.second_factor_missing:
            raise SecondFactorRequired(
                "this team requires a second factor: turn it on (enrolTwoFactor)", teamId=team
            )
        return team


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


def requires(
    permission: str,
) -> Callable[
    [Callable[Concatenate[S, Principal, P], Awaitable[R]]],
    Callable[Concatenate[S, Principal, P], Awaitable[R]],
]:
    """Guards a facade method `(self, principal, ..., team_id=None, ...)`.

    The permission is checked in the team the call names (or the caller's
    default team), and that team is passed on as `team_id`: a guarded method
    never sees a team its caller may not act in.
    """

    def decorate(
        method: Callable[Concatenate[S, Principal, P], Awaitable[R]],
    ) -> Callable[Concatenate[S, Principal, P], Awaitable[R]]:
        signature = inspect.signature(method)
        if "team_id" not in signature.parameters:
            raise TypeError(f"{method.__qualname__} must take team_id to be guarded")
        keyword_only = signature.parameters["team_id"].kind is inspect.Parameter.KEYWORD_ONLY

        @functools.wraps(method)
        async def guarded(self: S, principal: Principal, *args: P.args, **kwargs: P.kwargs) -> R:
            if not isinstance(principal, Principal):
                raise Unauthenticated("authentication required")
            if keyword_only:  # the common case, and a hot path: no signature binding
                kwargs["team_id"] = principal.require(permission, kwargs.get("team_id"))  # type: ignore[arg-type]
                return await method(self, principal, *args, **kwargs)
            bound = signature.bind(self, principal, *args, **kwargs)
            bound.apply_defaults()
            bound.arguments["team_id"] = principal.require(permission, bound.arguments["team_id"])
            return await method(*bound.args, **bound.kwargs)

        guarded.required_permission = permission  # type: ignore[attr-defined]
        return guarded

    return decorate


def guarded_permission(method: Any) -> str | None:
    """The permission a facade method requires, for tests and docs."""
    return getattr(method, "required_permission", None)


@dataclass(frozen=True, slots=True)
class Operator:
    """Whoever runs the `haunted` CLI on the servers (e.g. `haunted privacy export`): never
    built from a request, so no token or link can act as one."""

    command: str  # what runs as the operator, e.g. "privacy export"


Caller = Principal | Operator


@dataclass(frozen=True, slots=True)
class ExportSubject:
    """The user a data export is about, and their teams (team id -> role) as auth holds
    them: services that keep data per team export the teams' parts from this."""

    user_id: str
    teams: Mapping[str, str] = field(default_factory=dict)

    def teams_with(self, permission: str) -> list[str]:
        """The user's teams where their role grants `permission`, sorted."""
        return sorted(
            team
            for team, role in self.teams.items()
            if permission in ROLE_PERMISSIONS.get(role, frozenset())
        )


def require_self(caller: Caller, user_id: str) -> None:
    """A user exports (or is told about) only their own data; the operator, anyone's.
    An API key acts for a team, never for a person: refused."""
    if isinstance(caller, Operator):
        return
    if not isinstance(caller, Principal):
        raise Unauthenticated("authentication required")
    if caller.api_key_id is not None or caller.user_id != user_id:
        raise Forbidden("a user exports only their own data", permission="self")
