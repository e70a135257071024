"""The teams facade: members, roles and invitations."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import (
    InviteCreated,
    InviteRevoked,
    TeamCreated,
    TeamMemberAdded,
    TeamMemberRemoved,
    TeamRoleChanged,
    TeamTwoFactorRequired,
)
from services.auth import account_tokens, export
from services.auth.accounts import EMAIL, Accounts, normalize_email
from services.auth.audit import add_audited_event
from services.auth.crypto import Sealed, token_hash
from services.auth.models import Invite, Membership, SecondFactor, Team, User
from services.auth.views import (
    InvitePreviewView,
    InviteView,
    MembershipView,
    MemberView,
    PendingInviteView,
    TeamView,
)
from services.errors import BadUserInput, Conflict, Forbidden, NotFound, SecondFactorRequired
from services.principal import ROLE_PERMISSIONS, ROLES, Caller, ExportSubject, Principal, requires

INVITE_PREFIX = "hi_"


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise BadUserInput(f"role must be one of {', '.join(ROLES)}", field="role")
    return role


def _only_users(principal: Principal) -> None:
    if principal.api_key_id is not None:
        raise Forbidden("API keys cannot manage teams")


def _may_invite(author_role: str | None, invited_role: str) -> bool:
    """Whether a member with `author_role` may (still) stand behind an invite to `invited_role`."""
    if author_role is None or "team:invite" not in ROLE_PERMISSIONS.get(author_role, ()):
        return False
    return invited_role != "owner" or author_role == "owner"


def _pending(now: datetime) -> Any:
    return (Invite.accepted_at.is_(None), Invite.revoked_at.is_(None), Invite.expires_at > now)


class TeamService:
    def __init__(self, accounts: Accounts, invite_ttl: timedelta = timedelta(days=7)) -> None:
        self._accounts = accounts
        self._db = accounts.db
        self._invite_ttl = invite_ttl

    async def create_team(self, principal: Principal, name: str) -> TeamView:
        """Any signed-in user may create a team; they become its owner."""
        _only_users(principal)
        name = name.strip()
        if not name or len(name) > 200:
            raise BadUserInput("name must have 1 to 200 characters", field="name")
        team_id, now = str(uuid.uuid4()), datetime.now(UTC)
        async with self._db.transaction() as session:
            session.add(Team(id=team_id, name=name, created_at=now))
            await session.flush()
            session.add(
                Membership(team_id=team_id, user_id=principal.user_id, role="owner", created_at=now)
            )
            add_audited_event(session, TeamCreated(team_id=team_id, owner_id=principal.user_id))
            add_audited_event(
                session, TeamMemberAdded(team_id=team_id, user_id=principal.user_id, role="owner")
            )
        await self._accounts.sessions.forget_roles(principal.user_id)
        return TeamView(team_id, name)

    @requires("team:read")
    async def members(
        self, principal: Principal, *, team_id: str | None = None
    ) -> list[MemberView]:
        async with self._db.read() as session:
            rows = await session.execute(
                select(User, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.team_id == team_id)
                .order_by(Membership.created_at, User.id)
            )
            members = rows.all()
            keys = await self._accounts.keys.get_many(session, (user.id for user, _ in members))
            return [
                MemberView(user.id, self._accounts.email_with(keys.get(user.id), user), role)
                for user, role in members
            ]

    @requires("team:invite")
    async def invite(
        self, principal: Principal, email: str, role: str, *, team_id: str | None = None
    ) -> InviteView:
        """A single-use invitation for one email address, valid for invite_ttl."""
        _only_users(principal)
        assert team_id is not None  # set by the guard
        _check_role(role)
        if role == "owner" and principal.teams.get(team_id) != "owner":
            raise Forbidden("only an owner may invite an owner")
        normalized = normalize_email(email)
        email_hash = self._accounts.email_hash(normalized)
        sealed = self._accounts.cipher.seal(normalized, context=EMAIL)
        token = INVITE_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        invite = Invite(
            id=str(uuid.uuid4()),
            token_hash=token_hash(token),
            team_id=team_id,
            email_hash=email_hash,
            role=role,
            invited_by=principal.user_id,
            created_at=now,
            expires_at=now + self._invite_ttl,
            email_key_id=sealed.key_id,
            email_ciphertext=sealed.ciphertext,
        )
        async with self._db.transaction() as session:
            session.add(invite)
            add_audited_event(
                session,
                InviteCreated(
                    team_id=team_id,
                    invite_id=invite.id,
                    role=role,
                    invited_by=principal.user_id,
                    expires_at=invite.expires_at,
                    address_key_id=sealed.key_id,
                    sealed_address=base64.b64encode(sealed.ciphertext).decode("ascii"),
                    **account_tokens.sealed_code(self._accounts, token, invite.id),
                ),
            )
        return InviteView(invite.id, team_id, role, invite.expires_at, token)

    @requires("team:invite")
    async def invites(
        self, principal: Principal, *, team_id: str | None = None
    ) -> list[PendingInviteView]:
        """The team's pending invites (not accepted, revoked or expired), oldest first."""
        now = datetime.now(UTC)
        async with self._db.read() as session:
            rows = await session.scalars(
                select(Invite)
                .where(Invite.team_id == team_id, *_pending(now))
                .order_by(Invite.created_at, Invite.id)
            )
            invites = rows.all()
        return [
            PendingInviteView(
                invite.id,
                invite.team_id,
                self._accounts.cipher.open(
                    Sealed(invite.email_key_id, invite.email_ciphertext), context=EMAIL
                )
                if invite.email_key_id is not None and invite.email_ciphertext is not None
                else None,
                invite.role,
                invite.invited_by,
                invite.created_at,
                invite.expires_at,
            )
            for invite in invites
        ]

    async def revoke_invite(self, principal: Principal, invite_id: str) -> bool:
        """Cancels a pending invite (team:invite in its team; an owner invite, owners only).
        False when it was no longer pending (accepted, revoked or expired)."""
        _only_users(principal)
        async with self._db.read() as session:
            invite = await session.get(Invite, invite_id)
        if invite is None or invite.team_id not in principal.teams:
            raise NotFound("no such invite")
        return await self._revoke_invite(principal, invite.id, invite.role, team_id=invite.team_id)

    @requires("team:invite")
    async def _revoke_invite(
        self, principal: Principal, invite_id: str, role: str, *, team_id: str | None = None
    ) -> bool:
        assert team_id is not None  # set by the guard
        if not _may_invite(principal.teams.get(team_id), role):
            raise Forbidden("only an owner may revoke an owner invite")
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            result = await session.execute(
                update(Invite)
                .where(Invite.id == invite_id, Invite.team_id == team_id, *_pending(now))
                .values(revoked_at=now)
            )
            revoked = bool(result.rowcount)  # type: ignore[attr-defined]
            if revoked:
                add_audited_event(
                    session,
                    InviteRevoked(
                        team_id=team_id,
                        invite_id=invite_id,
                        reason="revoked_by_admin",
                        actor_id=principal.user_id,
                    ),
                )
        return revoked

    @staticmethod
    async def _orphan_invites(
        session: AsyncSession, team_id: str, author_id: str, role: str | None, reason: str
    ) -> None:
        """Revokes the pending invites their author can no longer stand behind (in the
        transaction that removes or demotes the author)."""
        now = datetime.now(UTC)
        pending = await session.scalars(
            select(Invite).where(
                Invite.team_id == team_id, Invite.invited_by == author_id, *_pending(now)
            )
        )
        for invite in pending.all():
            if not _may_invite(role, invite.role):
                invite.revoked_at = now
                add_audited_event(
                    session, InviteRevoked(team_id=team_id, invite_id=invite.id, reason=reason)
                )

    async def preview_invite(self, token: str) -> InvitePreviewView:
        """The team and role an invite offers, for its link's page (no sign-in needed:
        holding the token is the right to see them). Used, revoked or expired: refused."""
        async with self._db.read() as session:
            invite = await session.scalar(
                select(Invite).where(Invite.token_hash == token_hash(token))
            )
            team = None if invite is None else await session.get(Team, invite.team_id)
        if invite is None or team is None:
            raise NotFound("no such invite: check the link", field="token")
        if invite.accepted_at is not None:
            raise Conflict("this invite was already used", field="token")
        if invite.revoked_at is not None:
            raise BadUserInput("this invite was revoked", field="token")
        if invite.expires_at <= datetime.now(UTC):
            raise BadUserInput("this invite has expired", field="token")
        return InvitePreviewView(team.name, invite.role, invite.expires_at)

    async def accept_invite(self, principal: Principal, token: str) -> MembershipView:
        """Joins the caller to the invite's team; the invite must name the caller's email."""
        _only_users(principal)
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            invite = await session.scalar(
                select(Invite).where(Invite.token_hash == token_hash(token))
            )
            if invite is None:
                raise NotFound("no such invite")
            if invite.accepted_at is not None:
                raise Conflict("this invite was already used")
            if invite.revoked_at is not None:
                raise BadUserInput("this invite was revoked")
            if invite.expires_at <= now:
                raise BadUserInput("this invite has expired")
            # Belt and braces beside _orphan_invites: an author without the right to
            # invite (removed, demoted) no longer stands behind the invite.
            author = await session.get(Membership, (invite.team_id, invite.invited_by))
            if not _may_invite(author.role if author else None, invite.role):
                raise BadUserInput("this invite was revoked")
            user = await session.get(User, principal.user_id)
            if user is None or user.email_hash != invite.email_hash:
                raise Forbidden("this invite is for another email address")
            if await session.get(Membership, (invite.team_id, principal.user_id)) is not None:
                raise Conflict("you are already a member of this team")
            accepted = await session.execute(
                update(Invite)
                .where(Invite.id == invite.id, Invite.accepted_at.is_(None))
                .values(accepted_at=now, accepted_by=principal.user_id)
            )
            if accepted.rowcount != 1:  # type: ignore[attr-defined]
                raise Conflict("this invite was already used")
            session.add(
                Membership(
                    team_id=invite.team_id,
                    user_id=principal.user_id,
                    role=invite.role,
                    created_at=now,
                )
            )
            add_audited_event(
                session,
                TeamMemberAdded(
                    team_id=invite.team_id, user_id=principal.user_id, role=invite.role
                ),
            )
            team = await session.get(Team, invite.team_id)
        await self._accounts.sessions.forget_roles(principal.user_id)
        return MembershipView(invite.team_id, team.name if team else "", invite.role)

    @requires("team:manage")
    async def change_role(
        self, principal: Principal, user_id: str, role: str, *, team_id: str | None = None
    ) -> MembershipView:
        _only_users(principal)
        assert team_id is not None
        _check_role(role)
        async with self._db.transaction() as session:
            member = await self._member(session, team_id, user_id)
            touches_owner = "owner" in (role, member.role)
            if touches_owner and principal.teams.get(team_id) != "owner":
                raise Forbidden("only an owner may grant or change the owner role")
            if member.role == "owner" and role != "owner":
                await self._keep_an_owner(session, team_id)
            if member.role != role:
                member.role = role
                add_audited_event(
                    session,
                    TeamRoleChanged(
                        team_id=team_id, user_id=user_id, role=role, actor_id=principal.user_id
                    ),
                )
                await self._orphan_invites(session, team_id, user_id, role, "author_demoted")
            team = await session.get(Team, team_id)
        await self._accounts.sessions.forget_roles(user_id)
        return MembershipView(team_id, team.name if team else "", role)

    @requires("team:manage")
    async def remove_member(
        self, principal: Principal, user_id: str, *, team_id: str | None = None
    ) -> bool:
        _only_users(principal)
        assert team_id is not None
        return await self._remove(principal, team_id, user_id)

    @requires("team:read")
    async def leave(self, principal: Principal, *, team_id: str | None = None) -> bool:
        """Any member may leave, except the last owner."""
        _only_users(principal)
        assert team_id is not None
        return await self._remove(principal, team_id, principal.user_id)

    async def _remove(self, principal: Principal, team_id: str, user_id: str) -> bool:
        async with self._db.transaction() as session:
            member = await self._member(session, team_id, user_id)
            if member.role == "owner":
                if user_id != principal.user_id and principal.teams.get(team_id) != "owner":
                    raise Forbidden("only an owner may remove an owner")
                await self._keep_an_owner(session, team_id)
            await session.delete(member)
            add_audited_event(
                session,
                TeamMemberRemoved(team_id=team_id, user_id=user_id, actor_id=principal.user_id),
            )
            await self._orphan_invites(session, team_id, user_id, None, "author_removed")
        await self._accounts.sessions.forget_roles(user_id)
        return True

    @requires("team:delete")
    async def require_two_factor(
        self, principal: Principal, required: bool, *, team_id: str | None = None
    ) -> bool:
        """An owner's policy: the team's members act in it only with a second factor on.
        Turning it on needs the owner's own second factor first."""
        _only_users(principal)
        assert team_id is not None
        async with self._db.transaction() as session:
            if required:
                factor = await session.get(SecondFactor, principal.user_id)
                if factor is None or factor.confirmed_at is None:
                    raise SecondFactorRequired(
                        "turn on your own second factor before requiring one (enrolTwoFactor)"
                    )
            team = await session.get(Team, team_id)
            assert team is not None  # the guard found the caller's membership in it
            changed = team.require_two_factor != required
            if changed:
                team.require_two_factor = required
                add_audited_event(
                    session, TeamTwoFactorRequired(team_id=team_id, required=required)
                )
            members = (
                await session.scalars(
                    select(Membership.user_id).where(Membership.team_id == team_id)
                )
            ).all()
        if changed:  # every member's next request reads the policy
            await self._accounts.sessions.forget_roles(*members)
        return changed

    async def export_teams(self, caller: Caller, of: ExportSubject) -> export.TeamsExport:
        """The user's memberships and the invites they made, for their data export."""
        return await export.teams(self._accounts, caller, of)

    @staticmethod
    async def _member(session: AsyncSession, team_id: str, user_id: str) -> Membership:
        member = await session.get(Membership, (team_id, user_id))
        if member is None:
            raise NotFound("no such member in this team")
        return member

    @staticmethod
    async def _keep_an_owner(session: AsyncSession, team_id: str) -> None:
        # Row locks on the owners: two owners demoting each other at once must
        # not both see "another owner remains" (SQLite serializes writers anyway).
        owners = (
            await session.scalars(
                select(Membership.user_id)
                .where(Membership.team_id == team_id, Membership.role == "owner")
                .with_for_update()
            )
        ).all()
        if len(owners) <= 1:
            raise Conflict("a team keeps at least one owner")
