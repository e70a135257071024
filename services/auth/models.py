"""Tables only the auth service touches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base


class User(Base):
    __tablename__ = "auth_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The email is stored sealed (AES-GCM) and found by its keyed hash:
    # uniqueness is on the hash of the normalized address. Sealed with the user's own
    # data key (email_key_id "user", see UserKey), or with the PII ring for rows not yet
    # moved to one (`haunted privacy migrate`).
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email_key_id: Mapped[str] = mapped_column(String(32))
    email_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    # When the owner proved they read the address (verifyEmail or resetPassword).
    email_verified_at: Mapped[datetime | None] = mapped_column()


class Team(Base):
    __tablename__ = "auth_teams"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column()
    # Its owners' policy: members act in it only with a second factor turned on.
    require_two_factor: Mapped[bool] = mapped_column(Boolean, default=False)


class Membership(Base):
    __tablename__ = "auth_memberships"

    team_id: Mapped[str] = mapped_column(ForeignKey("auth_teams.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("auth_users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column()


class UserSession(Base):
    """The durable record of a session (the hot copy lives in Redis)."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("auth_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # The client's address and user agent (JSON), sealed with the user's data key:
    # personal data, unreadable once the user is erased.
    client_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)


class RefreshToken(Base):
    """One link of a session's refresh chain; spent once, then replaced."""

    __tablename__ = "auth_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("auth_sessions.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(36))
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class Invite(Base):
    __tablename__ = "auth_invites"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("auth_teams.id"), index=True)
    email_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    invited_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    accepted_by: Mapped[str | None] = mapped_column(String(36))
    # The invited address, sealed (None for invites made before it was kept).
    email_key_id: Mapped[str | None] = mapped_column(String(32))
    email_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    revoked_at: Mapped[datetime | None] = mapped_column()


class ApiKey(Base):
    __tablename__ = "auth_api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("auth_teams.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    permissions: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class AccountToken(Base):
    """A single-use token mailed to a user: email verification or password reset.
    Only its hash is kept; the mail channel gets the token sealed in the event."""

    __tablename__ = "auth_account_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("auth_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class SecondFactor(Base):
    """A user's TOTP secret, sealed; usable once confirmed with a first code."""

    __tablename__ = "auth_second_factors"

    user_id: Mapped[str] = mapped_column(ForeignKey("auth_users.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column()
    confirmed_at: Mapped[datetime | None] = mapped_column()
    # The last TOTP time step accepted: a code is good once (RFC 6238, 5.2).
    last_step: Mapped[int] = mapped_column(Integer, default=0)


class RecoveryCode(Base):
    """A single-use recovery code, kept as a keyed hash."""

    __tablename__ = "auth_recovery_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("auth_users.id"), index=True)
    used_at: Mapped[datetime | None] = mapped_column()


class UserKey(Base):
    """A user's data key (AES-256), wrapped with the PII key ring: everything personal of
    the user is sealed with it, and erasing the user deletes it (crypto-shredding).

    The key store: `haunted backup` leaves this table out of the database dump and
    keeps it beside, in a file the erase rewrites (docs/privacy.md)."""

    __tablename__ = "auth_user_keys"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    ring_key_id: Mapped[str] = mapped_column(String(32))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column()


class Erasure(Base):
    """An erased user, kept (outside backups, with the key store) so that an erase is done
    once, reported the same each time, and applied again after a restore."""

    __tablename__ = "auth_erasures"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    anonymous_id: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[datetime] = mapped_column()
    # What each service did, as the first erase reported it.
    report: Mapped[dict[str, dict[str, int]]] = mapped_column(JSON)
