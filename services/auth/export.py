"""What auth holds about one user, for their data export: plain snake_case views.

Never a secret: no password hash, no TOTP secret or recovery code, no token or key
hash, no invitee's address (someone else's personal data). Emails are read through
`Accounts.email_of`, the same path every answer uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from services.auth.accounts import Accounts
from services.auth.models import ApiKey, Invite, Membership, SecondFactor, Team, User, UserSession
from services.auth.user_keys import open_client
from services.auth.views import ApiKeyView
from services.errors import NotFound
from services.principal import Caller, ExportSubject, require_self


@dataclass(frozen=True, slots=True)
class AccountExport:
    id: str
    email: str
    created_at: datetime
    email_verified_at: datetime | None
    two_factor_enabled: bool
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class SessionExport:
    id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class TeamMembershipExport:
    team_id: str
    team_name: str
    role: str
    joined_at: datetime
    team_requires_two_factor: bool


@dataclass(frozen=True, slots=True)
class InviteSentExport:
    """An invite the user made: who it was for stays out (their address is theirs)."""

    id: str
    team_id: str
    role: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class TeamsExport:
    memberships: list[TeamMembershipExport]
    invites_sent: list[InviteSentExport]


async def subject(accounts: Accounts, caller: Caller, user_id: str) -> ExportSubject:
    """The user and their teams; NOT_FOUND when there is no such user."""
    require_self(caller, user_id)
    async with accounts.db.read() as session:
        if await session.get(User, user_id) is None:
            raise NotFound("no such user", field="userId")
        rows = await session.execute(
            select(Membership.team_id, Membership.role).where(Membership.user_id == user_id)
        )
        return ExportSubject(user_id, {team: role for team, role in rows.all()})


async def account(accounts: Accounts, caller: Caller, of: ExportSubject) -> AccountExport:
    require_self(caller, of.user_id)
    async with accounts.db.read() as session:
        user = await session.get(User, of.user_id)
        if user is None:
            raise NotFound("no such user", field="userId")
        factor = await session.get(SecondFactor, of.user_id)
        return AccountExport(
            id=user.id,
            email=await accounts.email_of(session, user),
            created_at=user.created_at,
            email_verified_at=user.email_verified_at,
            two_factor_enabled=factor is not None and factor.confirmed_at is not None,
            locked_until=user.locked_until,
        )


async def sessions(accounts: Accounts, caller: Caller, of: ExportSubject) -> list[SessionExport]:
    """Every session the user had, ended ones too, oldest first."""
    require_self(caller, of.user_id)
    async with accounts.db.read() as session:
        key = (await accounts.keys.get_many(session, [of.user_id])).get(of.user_id)
        rows = await session.scalars(
            select(UserSession)
            .where(UserSession.user_id == of.user_id)
            .order_by(UserSession.created_at, UserSession.id)
        )
        return [
            SessionExport(
                row.id,
                row.created_at,
                row.expires_at,
                row.revoked_at,
                # Sealed with the user's data key (docs/privacy.md).
                *open_client(key, row.client_ciphertext),
            )
            for row in rows.all()
        ]


async def teams(accounts: Accounts, caller: Caller, of: ExportSubject) -> TeamsExport:
    require_self(caller, of.user_id)
    async with accounts.db.read() as session:
        memberships = await session.execute(
            select(Membership, Team)
            .join(Team, Team.id == Membership.team_id)
            .where(Membership.user_id == of.user_id)
            .order_by(Membership.created_at, Membership.team_id)
        )
        invites = await session.scalars(
            select(Invite)
            .where(Invite.invited_by == of.user_id)
            .order_by(Invite.created_at, Invite.id)
        )
        return TeamsExport(
            memberships=[
                TeamMembershipExport(
                    team.id, team.name, member.role, member.created_at, team.require_two_factor
                )
                for member, team in memberships.all()
            ],
            invites_sent=[
                InviteSentExport(
                    invite.id,
                    invite.team_id,
                    invite.role,
                    invite.created_at,
                    invite.expires_at,
                    invite.accepted_at,
                    invite.revoked_at,
                )
                for invite in invites.all()
            ],
        )


async def api_keys(accounts: Accounts, caller: Caller, of: ExportSubject) -> list[ApiKeyView]:
    require_self(caller, of.user_id)
    async with accounts.db.read() as session:
        rows = await session.scalars(
            select(ApiKey)
            .where(ApiKey.created_by == of.user_id)
            .order_by(ApiKey.created_at, ApiKey.id)
        )
        return [ApiKeyView.of(key) for key in rows.all()]
