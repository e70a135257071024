"""What the auth facades return: plain typed values, never rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.auth.models import ApiKey


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a request came from, as the gateway saw it."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class MembershipView:
    team_id: str
    team_name: str
    role: str


@dataclass(frozen=True, slots=True)
class UserView:
    id: str
    email: str
    memberships: list[MembershipView]


@dataclass(frozen=True, slots=True)
class AuthResult:
    token: str
    expires_at: datetime
    refresh_token: str
    session_id: str
    user: UserView


@dataclass(frozen=True, slots=True)
class SessionView:
    id: str
    created_at: datetime
    expires_at: datetime
    current: bool
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class TeamView:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class MemberView:
    user_id: str
    email: str
    role: str


@dataclass(frozen=True, slots=True)
class InviteView:
    id: str
    team_id: str
    role: str
    expires_at: datetime
    token: str  # shown once, to the inviter, to pass on


@dataclass(frozen=True, slots=True)
class PendingInviteView:
    """A pending invite as its team's admins see it: never its token (kept hashed)."""

    id: str
    team_id: str
    email: str | None  # None for invites made before addresses were kept
    role: str
    invited_by: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class InvitePreviewView:
    """What an invite link shows before anyone signs in: no email, no ids."""

    team_name: str
    role: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    """An API key as its owner sees it (the key list, the data export): never its secret
    or hash."""

    id: str
    team_id: str
    name: str
    permissions: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyView:
        return cls(
            key.id,
            key.team_id,
            key.name,
            list(key.permissions),
            key.created_at,
            key.last_used_at,
            key.revoked_at,
        )
