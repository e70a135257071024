"""Erasing a user by crypto-shredding: their data key is deleted, auth's rows of them are
dropped, and one `user.erased` event tells every other service to drop or anonymise its
own (docs/privacy.md).

Deleting the key is what makes the erase reach copies nobody can rewrite: events Kafka
retains and old backups hold the user's personal fields sealed with that key only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import SessionRevoked, TeamMemberRemoved, UserErased
from services.auth.accounts import EMAIL, Accounts
from services.auth.audit import add_audited_event
from services.auth.models import (
    AccountToken,
    Erasure,
    Invite,
    Membership,
    RecoveryCode,
    RefreshToken,
    SecondFactor,
    Team,
    User,
    UserKey,
    UserSession,
)
from services.auth.user_keys import USER_KEY_ID, UserKeys
from services.errors import Conflict, NotFound

# A team only the erased user was in keeps its id (billing and usage point at it) but not
# the name its member typed.
ERASED_TEAM_NAME = "Erased team"
DELETED_BY_USER = "deleted_by_user"
OPERATOR = "operator"

ServiceReport = dict[str, int]  # what one service did: a count per kind of row
# Deletes a user's data key from the key files of the backups (haunted/backup.py);
# returns how many files held it. Given by the composition root.
ShredBackupKeys = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What an erase did, per service ("auth" first). `already`: the user had been erased
    before, this call changed nothing, and the report is the first erase's."""

    user_id: str
    anonymous_id: str
    erased_at: datetime
    already: bool
    services: dict[str, ServiceReport]


def _report(row: Erasure, *, already: bool) -> ErasureReport:
    return ErasureReport(row.user_id, row.anonymous_id, row.erased_at, already, dict(row.report))


class Erasures:
    """Erases users and remembers whom (auth_erasures, kept out of backups)."""

    def __init__(
        self, accounts: Accounts, shred_backup_keys: ShredBackupKeys | None = None
    ) -> None:
        self._accounts = accounts
        self._db = accounts.db
        self._shred = shred_backup_keys

    async def shred_backup_keys(self, user_id: str) -> int:
        """The user's key out of the backups' key files (a second time finds none). In a
        thread: files, off the event loop."""
        if self._shred is None:
            return 0
        return await asyncio.to_thread(self._shred, user_id)

    def anonymous_id(self, user_id: str) -> str:
        """Stable per user, and unlinkable to the id without the PII lookup key."""
        return "anon_" + self._accounts.cipher.lookup_hash(user_id, context="anonymous")[:32]

    async def erase(self, user_id: str, *, reason: str) -> ErasureReport:
        """Deletes the user's data key and auth's rows of them, ends their sessions, and
        publishes user.erased; a second call changes nothing and answers the same report.
        CONFLICT for the last owner of a team that has other members."""
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            done = await session.get(Erasure, user_id)
            if done is not None:
                return _report(done, already=True)
            user = await session.get(User, user_id)
            if user is None:
                raise NotFound("no such user")
            counts, ended = await self._drop(session, user)
            # Before the commit: should it fail, the erase is not done and is asked again.
            counts["backup_key_files_rewritten"] = await self.shred_backup_keys(user_id)
            anonymous_id = self.anonymous_id(user_id)
            row = Erasure(
                user_id=user_id, anonymous_id=anonymous_id, erased_at=now, report={"auth": counts}
            )
            session.add(row)
            add_audited_event(
                session, UserErased(user_id=user_id, anonymous_id=anonymous_id, reason=reason)
            )
            report = _report(row, already=False)
        # The sessions' hot copies: their tokens stop working now. Should Redis not
        # answer, auth's consumer deletes them on session.revoked (handlers.py).
        await self._accounts.sessions.delete(*ended)
        await self._accounts.sessions.forget_roles(user_id)
        return report

    async def record(self, user_id: str, services: Mapping[str, ServiceReport]) -> ErasureReport:
        """Adds the other services' reports to the first erase's (kept for the next ask)."""
        async with self._db.transaction() as session:
            row = await session.get(Erasure, user_id)
            if row is None:
                raise NotFound("no such erasure")
            row.report = {
                **row.report,
                **{k: v for k, v in services.items() if k not in row.report},
            }
            return _report(row, already=False)

    async def erased(self, user_id: str) -> ErasureReport | None:
        async with self._db.read() as session:
            row = await session.get(Erasure, user_id)
            return None if row is None else _report(row, already=True)

    async def move_to_data_keys(self, batch: int = 500) -> int:
        """Re-seals with each user's data key the addresses still sealed with the PII ring
        (rows from before data keys): until then an erase could not reach their copies in
        backups. Run by `haunted migrate`; returns how many moved, 0 once done."""
        moved = 0
        while True:
            now = datetime.now(UTC)
            async with self._db.transaction() as session:
                users = list(
                    (
                        await session.scalars(
                            select(User).where(User.email_key_id != USER_KEY_ID).limit(batch)
                        )
                    ).all()
                )
                for user in users:
                    email = self._accounts.email_with(None, user)
                    key = await self._accounts.keys.ensure(session, user.id, now)
                    user.email_ciphertext = UserKeys.seal(key, email, context=EMAIL)
                    user.email_key_id = USER_KEY_ID
            moved += len(users)
            if len(users) < batch:
                return moved

    async def apply_again(self) -> list[str]:
        """After a restore: drops the rows a backup brought back of users erased since it
        was taken (their data keys are not in it, so nothing of them opens meanwhile).
        Returns their ids."""
        async with self._db.transaction() as session:
            erased = list((await session.scalars(select(Erasure.user_id))).all())
            back = list(
                (await session.scalars(select(User).where(User.id.in_(erased)))).all()
                if erased
                else []
            )
            ended: list[str] = []
            for user in back:
                # Owners' rules were checked at the erase: the restored teams follow it.
                _, sessions = await self._drop(session, user, check_owners=False)
                ended += sessions
        await self._accounts.sessions.delete(*ended)
        await self._accounts.sessions.forget_roles(*(user.id for user in back))
        return [user.id for user in back]

    async def _drop(
        self, session: AsyncSession, user: User, *, check_owners: bool = True
    ) -> tuple[ServiceReport, list[str]]:
        user_id = user.id
        memberships = list(
            (await session.scalars(select(Membership).where(Membership.user_id == user_id))).all()
        )
        renamed = 0
        for membership in memberships:
            others = await _count(
                session, Membership.team_id == membership.team_id, Membership.user_id != user_id
            )
            other_owners = await _count(
                session,
                Membership.team_id == membership.team_id,
                Membership.user_id != user_id,
                Membership.role == "owner",
            )
            if check_owners and membership.role == "owner" and others and not other_owners:
                team = await session.get(Team, membership.team_id)
                raise Conflict(
                    f"the account is the last owner of the team {team.name if team else ''!r}, "
                    "which has other members: make one of them an owner (or remove them) "
                    "first; nothing was erased",
                    teamId=membership.team_id,
                )
            if not others:
                await session.execute(
                    update(Team).where(Team.id == membership.team_id).values(name=ERASED_TEAM_NAME)
                )
                renamed += 1
        ended = list(
            (
                await session.scalars(
                    select(UserSession.id).where(
                        UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
                    )
                )
            ).all()
        )
        counts: dict[str, Any] = {
            "sessions_ended": len(ended),
            "memberships_removed": len(memberships),
            "teams_renamed": renamed,
        }
        for session_id in ended:
            # One each: the consumers that close live connections and delete the hot copy
            # find the session by its id (its row is gone below).
            add_audited_event(
                session,
                SessionRevoked(user_id=user_id, session_id=session_id, reason="account_erased"),
            )
        for membership in memberships:
            add_audited_event(
                session,
                TeamMemberRemoved(team_id=membership.team_id, user_id=user_id, actor_id=user_id),
            )
        # Invites to the user's address: it is personal data of theirs too.
        invites = await session.execute(delete(Invite).where(Invite.email_hash == user.email_hash))
        counts["invites_deleted"] = int(invites.rowcount or 0)  # type: ignore[attr-defined]
        for table in (RecoveryCode, SecondFactor, AccountToken, RefreshToken, Membership):
            await session.execute(delete(table).where(table.user_id == user_id))
        sessions = await session.execute(delete(UserSession).where(UserSession.user_id == user_id))
        counts["sessions_deleted"] = int(sessions.rowcount or 0)  # type: ignore[attr-defined]
        await session.execute(delete(User).where(User.id == user_id))
        keys = await session.execute(delete(UserKey).where(UserKey.user_id == user_id))
        counts["data_keys_deleted"] = int(keys.rowcount or 0)  # type: ignore[attr-defined]
        counts["users_deleted"] = 1
        return counts, ended


async def _count(session: AsyncSession, *conditions: Any) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Membership).where(*conditions)) or 0
    )
