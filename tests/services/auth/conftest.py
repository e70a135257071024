"""Auth fixtures: the facades (tests/conftest.py: no broker), users registered through
them, a team with one user per role, and a snapshot of what a refused call must leave untouched."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import select

from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from schemas import CATALOG
from services.auth.models import ApiKey, Invite, Membership, Team
from services.errors import DomainError
from services.principal import ROLES, Principal
from tests.conftest import PASSWORD, unique_email


@dataclass(frozen=True)
class Account:
    """A registered user: their token and the team they got at registration (as owner)."""

    user_id: str
    email: str
    token: str
    own_team_id: str


async def sign_up(haunted: Haunted, email: str | None = None) -> Account:
    email = email or unique_email()
    result = await haunted.services.auth.register(email, PASSWORD)
    return Account(result.user.id, email, result.token, result.user.memberships[0].team_id)


async def principal_of(haunted: Haunted, account: Account) -> Principal:
    """What the account's next request is: its token authenticated again."""
    return await haunted.services.auth.authenticate(account.token)


async def join(haunted: Haunted, inviter: Account, team_id: str, role: str) -> Account:
    """A fresh user invited into `team_id` with `role`, who accepted."""
    invitee = await sign_up(haunted)
    invite = await haunted.services.teams.invite(
        await principal_of(haunted, inviter), invitee.email, role, team_id=team_id
    )
    await haunted.services.teams.accept_invite(await principal_of(haunted, invitee), invite.token)
    return invitee


@dataclass(frozen=True)
class RoleTeam:
    """One team (the owner's registration team) with one member per role."""

    team_id: str
    accounts: dict[str, Account]  # role -> account

    def __getitem__(self, role: str) -> Account:
        return self.accounts[role]


@pytest.fixture
async def role_team(facades: Haunted) -> RoleTeam:
    owner = await sign_up(facades)
    accounts = {"owner": owner}
    for role in ROLES:
        if role != "owner":
            accounts[role] = await join(facades, owner, owner.own_team_id, role)
    return RoleTeam(owner.own_team_id, accounts)


# Other services' consumers write their own events as auth's arrive: count auth's only.
AUTH_TOPICS = sorted(topic for topic, model in CATALOG.items() if model.source == "auth")


async def outbox_topics(haunted: Haunted) -> Counter[str]:
    """Auth's events in the outbox, by topic."""
    async with haunted.db.read() as session:
        topics = await session.scalars(
            select(OutboxRecord.topic).where(OutboxRecord.topic.in_(AUTH_TOPICS))
        )
        return Counter(topics.all())


async def roles_in(haunted: Haunted, team_id: str) -> dict[str, str]:
    """user id -> role, as the membership rows say."""
    async with haunted.db.read() as session:
        rows = await session.execute(
            select(Membership.user_id, Membership.role).where(Membership.team_id == team_id)
        )
        return {user_id: role for user_id, role in rows.all()}


@dataclass(frozen=True)
class Snapshot:
    """Every row a team, invite or API key operation could write, and the outbox."""

    teams: frozenset[str]
    memberships: frozenset[tuple[str, str, str]]
    invites: frozenset[tuple[str, datetime | None]]
    api_keys: frozenset[tuple[str, datetime | None, tuple[str, ...]]]
    outbox: Counter[str]


async def snapshot(haunted: Haunted) -> Snapshot:
    async with haunted.db.read() as session:
        teams = frozenset((await session.scalars(select(Team.id))).all())
        memberships = await session.execute(
            select(Membership.team_id, Membership.user_id, Membership.role)
        )
        invites = await session.execute(select(Invite.id, Invite.accepted_at))
        keys = await session.execute(select(ApiKey.id, ApiKey.revoked_at, ApiKey.permissions))
        rows = (
            frozenset((t, u, r) for t, u, r in memberships.all()),
            frozenset((i, at) for i, at in invites.all()),
            frozenset((k, at, tuple(p)) for k, at, p in keys.all()),
        )
    # Outside the session above: on SQLite a second one would wait for its lock.
    return Snapshot(teams, *rows, await outbox_topics(haunted))


async def refused(haunted: Haunted, code: str, call: Awaitable[object]) -> DomainError:
    """Awaits `call`, which must fail with `code` and leave every row as it was."""
    before = await snapshot(haunted)
    with pytest.raises(DomainError) as caught:
        await call
    assert caught.value.code == code, f"{caught.value!r}: {caught.value.code}, not {code}"
    assert await snapshot(haunted) == before
    return caught.value
