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
    # A keyed hash of the client's address and user agent: a sign-in from a device not
    # seen before is told to the owner by email.
    device: str | None = None
    # The owner's address sealed with the PII key ring (AES-GCM, associated data "email"),
    # base64, for the notice mailed to them; absent from events published before it.
    address_key_id: str | None = None
    sealed_address: str | None = None


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
    # The owner's address sealed with the PII key ring (AES-GCM, associated data "email"),
    # base64, for the notice mailed to them; absent from events published before it.
    address_key_id: str | None = None
    sealed_address: str | None = None


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
    push_permission: ClassVar[str] = "team:read"
    team_id: str
    owner_id: str


class TeamMemberAdded(_AuthEvent):
    topic: ClassVar[str] = "team.member_added"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    push_permission: ClassVar[str] = "team:read"
    team_id: str
    user_id: str
    role: str


class TeamMemberRemoved(_AuthEvent):
    topic: ClassVar[str] = "team.member_removed"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    push_permission: ClassVar[str] = "team:read"
    team_id: str
    user_id: str
    # Who did it (a user id), for the audit log; absent from older events.
    actor_id: str | None = None


class TeamRoleChanged(_AuthEvent):
    topic: ClassVar[str] = "team.role_changed"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    push_permission: ClassVar[str] = "team:read"
    team_id: str
    user_id: str
    role: str
    # Who did it (a user id), for the audit log; absent from older events.
    actor_id: str | None = None


class ApiKeyRevoked(_AuthEvent):
    """An API key was revoked: it authenticates nothing from now on, its open streams end."""

    topic: ClassVar[str] = "api_key.revoked"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    push_permission: ClassVar[str] = "team:manage"
    team_id: str
    api_key_id: str
    # Who did it (a user id), for the audit log; absent from older events.
    actor_id: str | None = None


class InviteCreated(_AuthEvent):
    """A member of a team invited an email address into it (the address is not in the
    event: the invite's id is, and the sealed address stays with auth)."""

    topic: ClassVar[str] = "invite.created"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    push_permission: ClassVar[str] = "team:invite"
    team_id: str
    invite_id: str
    role: str
    invited_by: str
    expires_at: Timestamp
    # The invited address (associated data "email") and the invite's token (associated
    # data "account-code" and the invite id), sealed with the PII key ring, base64: what
    # the email channel needs to mail the accept link. Absent from older events.
    address_key_id: str | None = None
    sealed_address: str | None = None
    code_key_id: str | None = None
    sealed_code: str | None = None


class InviteRevoked(_AuthEvent):
    """A pending invite can no longer be accepted: revoked by an admin, or its author lost
    the right to invite (reason author_removed or author_demoted)."""

    topic: ClassVar[str] = "invite.revoked"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    push_permission: ClassVar[str] = "team:invite"
    team_id: str
    invite_id: str
    reason: str
    # Who did it (a user id), for the audit log; absent from older events.
    actor_id: str | None = None


class _MailedCode(_AuthEvent):
    """What a mail channel needs to send a single-use link, with nothing in clear: the
    address and the code are sealed with the PII key ring (AES-GCM; the code's associated
    data is "account-code" and the request id), base64. Only a holder of the ring opens them.
    """

    audience: ClassVar[Audience] = Audience.INTERNAL
    key_field: ClassVar[str] = "user_id"
    user_id: str
    request_id: str
    expires_at: Timestamp
    address_key_id: str
    sealed_address: str
    code_key_id: str
    sealed_code: str


class EmailVerificationRequested(_MailedCode):
    """A user must prove they read their address: mail them the verification link."""

    topic: ClassVar[str] = "user.email_verification_requested"


class PasswordResetRequested(_MailedCode):
    """Someone asked to reset this user's password: mail the owner the reset link."""

    topic: ClassVar[str] = "user.password_reset_requested"


class EmailVerified(_AuthEvent):
    """The user proved they read their address."""

    topic: ClassVar[str] = "user.email_verified"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    user_id: str


class PasswordChanged(_AuthEvent):
    """The user's password changed (reason "changed" or "reset"); their other sessions
    were revoked, and a reset unlocked the account."""

    topic: ClassVar[str] = "user.password_changed"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    user_id: str
    reason: str
    # The owner's address sealed with the PII key ring (AES-GCM, associated data "email"),
    # base64, for the notice mailed to them; absent from events published before it.
    address_key_id: str | None = None
    sealed_address: str | None = None


class TwoFactorChanged(_AuthEvent):
    """The user turned sign-in with a second factor (TOTP) on or off."""

    topic: ClassVar[str] = "user.two_factor_changed"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    user_id: str
    enabled: bool


class TeamTwoFactorRequired(_AuthEvent):
    """An owner changed whether the team's members must sign in with a second factor."""

    topic: ClassVar[str] = "team.two_factor_required"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    push_permission: ClassVar[str] = "team:read"
    team_id: str
    required: bool


class DataExportRequested(_AuthEvent):
    """A user's data export was asked for: by the user (`via` "link", exportMyData) or
    by an operator (`via` "operator", `haunted privacy export`). No personal data."""

    topic: ClassVar[str] = "user.data_export_requested"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    user_id: str
    via: str


class UserErased(_AuthEvent):
    """A user was erased: their data key is deleted, so everything personal that was
    sealed with it (in tables, retained events and backups) can no longer be opened, and
    every service drops or anonymises what it holds of them (docs/privacy.md)."""

    topic: ClassVar[str] = "user.erased"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.INTERNAL
    user_id: str
    # Stands for the user where counts are kept (analytics): a keyed hash of the id, the
    # same at every erase of that user, that nobody without the PII lookup key can link.
    anonymous_id: str
    reason: str  # "deleted_by_user" or "operator"


# This module's topics, in the catalog's order (schemas.CATALOG reads it).
EVENTS: tuple[type[Event], ...] = (
    UserRegistered,
    UserLoggedIn,
    UserLoginFailed,
    UserLocked,
    UserLoggedOut,
    SessionRevoked,
    TeamCreated,
    TeamMemberAdded,
    TeamMemberRemoved,
    TeamRoleChanged,
    ApiKeyRevoked,
    InviteCreated,
    InviteRevoked,
    EmailVerificationRequested,
    PasswordResetRequested,
    EmailVerified,
    PasswordChanged,
    TwoFactorChanged,
    TeamTwoFactorRequired,
    DataExportRequested,
    UserErased,
)
