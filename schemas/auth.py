"""Events owned by the auth service: users, sessions and teams."""

from __future__ import annotations

from typing import ClassVar

from schemas.base import Audience, Event, Timestamp


class _AuthEvent(Event):
    source: ClassVar[str] = "auth"


class UserRegistered(_AuthEvent):
    """A user account was created, with the team it owns."""

    topic: ClassVar[str] = "user.registered"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    user_id: str
    team_id: str


class UserLoggedIn(_AuthEvent):
    """A user proved their identity and a session started."""

    topic: ClassVar[str] = "user.logged_in"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    user_id: str
    session_id: str


class UserLoginFailed(_AuthEvent):
    """A login attempt failed; user_id is absent when the email is unknown."""

    topic: ClassVar[str] = "user.login_failed"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.INTERNAL
    user_id: str | None = None
    reason: str
    attempt: int


class UserLocked(_AuthEvent):
    """Too many failed logins: the account refuses logins until locked_until, from the
    client that failed (scope "client") or from everywhere (scope "account")."""

    topic: ClassVar[str] = "user.locked"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    user_id: str
    locked_until: Timestamp
    scope: str | None = None


class UserLoggedOut(_AuthEvent):
    """A session ended at the user's request."""

    topic: ClassVar[str] = "user.logged_out"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    user_id: str
    session_id: str


class SessionRevoked(_AuthEvent):
    """A session (or, without session_id, every session) of a user was revoked."""

    topic: ClassVar[str] = "session.revoked"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    user_id: str
    session_id: str | None = None
    reason: str


class TeamCreated(_AuthEvent):
    topic: ClassVar[str] = "team.created"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    team_id: str
    owner_id: str


class TeamMemberAdded(_AuthEvent):
    topic: ClassVar[str] = "team.member_added"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    team_id: str
    user_id: str
    role: str


class TeamMemberRemoved(_AuthEvent):
    topic: ClassVar[str] = "team.member_removed"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    team_id: str
    user_id: str


class TeamRoleChanged(_AuthEvent):
    topic: ClassVar[str] = "team.role_changed"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    team_id: str
    user_id: str
    role: str


class ApiKeyRevoked(_AuthEvent):
    """An API key was revoked: it authenticates nothing from now on, its open streams end."""

    topic: ClassVar[str] = "api_key.revoked"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    team_id: str
    api_key_id: str


class InviteCreated(_AuthEvent):
    """A member of a team invited an email address into it (the address is not in the
    event: the invite's id is, and the sealed address stays with auth)."""

    topic: ClassVar[str] = "invite.created"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    team_id: str
    invite_id: str
    role: str
    invited_by: str
    expires_at: Timestamp


class InviteRevoked(_AuthEvent):
    """A pending invite can no longer be accepted: revoked by an admin, or its author lost
    the right to invite (reason author_removed or author_demoted)."""

    topic: ClassVar[str] = "invite.revoked"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    team_id: str
    invite_id: str
    reason: str
