"""Who is calling: the verified identity that every facade checks permissions against.

Auth builds it from a token and its session; the other services only read it,
so the role vocabulary lives here rather than inside the auth service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.errors import Forbidden

ROLES = ("owner", "admin", "member", "viewer")

# resource:action strings each role grants within its team.
ROLE_PERMISSIONS: Mapping[str, frozenset[str]] = {
    "owner": frozenset(
        {
            "team:manage",
            "team:read",
            "billing:manage",
            "billing:read",
            "llm:call",
            "analytics:read",
            "flags:read",
        }
    ),
    "admin": frozenset(
        {
            "team:manage",
            "team:read",
            "billing:read",
            "llm:call",
            "analytics:read",
            "flags:read",
        }
    ),
    "member": frozenset({"team:read", "llm:call", "analytics:read", "flags:read"}),
    "viewer": frozenset({"team:read", "flags:read"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    session_id: str
    teams: Mapping[str, str] = field(default_factory=dict)  # team id -> role

    @property
    def default_team_id(self) -> str | None:
        owned = [team for team, role in self.teams.items() if role == "owner"]
        candidates = owned or sorted(self.teams)
        return candidates[0] if candidates else None

    def permissions(self, team_id: str | None = None) -> frozenset[str]:
        team = team_id or self.default_team_id
        role = self.teams.get(team) if team else None
        return ROLE_PERMISSIONS.get(role, frozenset()) if role else frozenset()

    def require(self, permission: str, team_id: str | None = None) -> str:
        """Returns the team the permission holds in, or raises Forbidden."""
        team = team_id or self.default_team_id
        if team is None or permission not in self.permissions(team):
            raise Forbidden(f"missing permission {permission}", permission=permission)
        return team
