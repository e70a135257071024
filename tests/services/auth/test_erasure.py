"""Erase by crypto-shredding (issue 20.2), at auth's facade: the data key and auth's rows
go, sessions end, user.erased is published once, and refusals change nothing."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select, update

from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from services.auth import EventUnsealer, PiiCipher
from services.auth.accounts import EMAIL, ERASED_EMAIL
from services.auth.crypto import Sealed
from services.auth.erasure import DELETED_BY_USER, ERASED_TEAM_NAME
from services.auth.models import Erasure, Team, User, UserKey, UserSession
from services.auth.service import INVALID_CREDENTIALS
from services.errors import Conflict, Forbidden, NotFound, Unauthenticated
from services.principal import Principal
from tests.conftest import PASSWORD
from tests.services.auth.conftest import (
    Account,
    RoleTeam,
    join,
    outbox_topics,
    principal_of,
    refused,
    sign_up,
)


async def payloads(haunted: Haunted, topic: str) -> list[dict[str, object]]:
    async with haunted.db.read() as session:
        rows = await session.scalars(select(OutboxRecord).where(OutboxRecord.topic == topic))
        return [json.loads(row.value) for row in rows.all()]


async def rows_of(haunted: Haunted, user_id: str) -> tuple[bytes | None, bytes | None, bool, int]:
    """The user's sealed address, wrapped key, whether erased, and sessions."""
    async with haunted.db.read() as session:
        sessions = await session.scalars(select(UserSession).where(UserSession.user_id == user_id))
        user = await session.get(User, user_id)
        key = await session.get(UserKey, user_id)
        return (
            user.email_ciphertext if user else None,
            key.wrapped_key if key else None,
            await session.get(Erasure, user_id) is not None,
            len(sessions.all()),
        )


async def test_delete_account_shreds_the_key_ends_sessions_and_publishes_user_erased(
    facades: Haunted,
) -> None:
    auth = facades.services.auth
    account = await sign_up(facades)
    other_device = await auth.login(account.email, PASSWORD)
    logged_in = [
        p for p in await payloads(facades, "user.logged_in") if p["user_id"] == account.user_id
    ]
    assert logged_in and logged_in[0]["address_key_id"] == f"user:{account.user_id}"
    unseal = EventUnsealer(auth._accounts.cipher)
    sealed = base64.b64decode(str(logged_in[0]["sealed_address"]))
    async with facades.db.read() as session:
        assert await unseal(session, f"user:{account.user_id}", sealed, EMAIL) == account.email

    report = await auth.delete_account(await principal_of(facades, account), PASSWORD)

    assert not report.already and report.user_id == account.user_id
    assert report.anonymous_id.startswith("anon_") and account.user_id not in report.anonymous_id
    assert report.services["auth"]["sessions_ended"] == 2
    assert report.services["auth"]["data_keys_deleted"] == 1
    user, key, erasure, sessions = await rows_of(facades, account.user_id)
    assert user is None and key is None and sessions == 0 and erasure
    # The retained event's copy of the address no longer opens: its key is gone.
    async with facades.db.read() as session:
        assert await unseal(session, f"user:{account.user_id}", sealed, EMAIL) is None
    for token in (account.token, other_device.token):
        with pytest.raises(Unauthenticated):
            await auth.authenticate(token)
    with pytest.raises(Unauthenticated, match=INVALID_CREDENTIALS):
        await auth.login(account.email, PASSWORD)
    [erased] = [p for p in await payloads(facades, "user.erased")]
    assert erased == {
        "user_id": account.user_id,
        "anonymous_id": report.anonymous_id,
        "reason": DELETED_BY_USER,
    }
    # Nothing of the address in clear in anything published.
    async with facades.db.read() as session:
        values = (await session.scalars(select(OutboxRecord.value))).all()
    assert not any(account.email.encode() in value for value in values)
    # The sole-member team keeps its id (billing points at it), not its name.
    async with facades.db.read() as session:
        team = await session.get(Team, account.own_team_id)
    assert team is not None and team.name == ERASED_TEAM_NAME


async def test_a_second_erase_changes_nothing_and_reports_the_same(facades: Haunted) -> None:
    auth = facades.services.auth
    account = await sign_up(facades)
    first = await auth.erasures.erase(account.user_id, reason="operator")
    events = await outbox_topics(facades)

    again = await auth.erasures.erase(account.user_id, reason="operator")

    assert again.already and not first.already
    assert (again.anonymous_id, again.erased_at, again.services) == (
        first.anonymous_id,
        first.erased_at,
        first.services,
    )
    assert await outbox_topics(facades) == events


async def test_the_address_is_free_again_after_an_erase(facades: Haunted) -> None:
    account = await sign_up(facades)
    await facades.services.auth.erasures.erase(account.user_id, reason="operator")
    again = await sign_up(facades, account.email)
    assert again.user_id != account.user_id
    me = await facades.services.auth.me(await principal_of(facades, again))
    assert me is not None and me.email == account.email


async def test_a_wrong_password_is_refused_and_changes_nothing(facades: Haunted) -> None:
    account = await sign_up(facades)
    principal = await principal_of(facades, account)
    before = await rows_of(facades, account.user_id)

    error = await refused(
        facades, "FORBIDDEN", facades.services.auth.delete_account(principal, "not-it")
    )

    assert isinstance(error, Forbidden) and error.extensions["field"] == "password"
    assert await rows_of(facades, account.user_id) == before and before[1] is not None
    assert await facades.services.auth.authenticate(account.token)


async def test_an_api_key_cannot_delete_an_account(facades: Haunted) -> None:
    account = await sign_up(facades)
    as_key = Principal(
        user_id=account.user_id,
        session_id="",
        teams={account.own_team_id: "owner"},
        granted=frozenset({"team:read"}),
        api_key_id="k1",
    )
    await refused(facades, "FORBIDDEN", facades.services.auth.delete_account(as_key, PASSWORD))
    assert (await rows_of(facades, account.user_id))[0] is not None


async def test_the_last_owner_of_a_team_with_members_is_refused_until_another_owns_it(
    facades: Haunted, role_team: RoleTeam
) -> None:
    owner = role_team["owner"]
    error = await refused(
        facades,
        "CONFLICT",
        facades.services.auth.delete_account(await principal_of(facades, owner), PASSWORD),
    )
    assert isinstance(error, Conflict) and error.extensions["teamId"] == role_team.team_id
    assert "last owner" in error.message

    admin = role_team["admin"]
    await facades.services.teams.change_role(
        await principal_of(facades, owner), admin.user_id, "owner", team_id=role_team.team_id
    )
    report = await facades.services.auth.delete_account(
        await principal_of(facades, owner), PASSWORD
    )
    assert report.services["auth"]["memberships_removed"] == 1
    removed = [
        p for p in await payloads(facades, "team.member_removed") if p["user_id"] == owner.user_id
    ]
    assert [p["team_id"] for p in removed] == [role_team.team_id]
    members = await facades.services.teams.members(
        await principal_of(facades, admin), team_id=role_team.team_id
    )
    assert owner.user_id not in {m.user_id for m in members}
    async with facades.db.read() as session:
        team = await session.get(Team, role_team.team_id)
    assert team is not None and team.name != ERASED_TEAM_NAME  # others are in it


async def test_an_unknown_user_is_not_found(facades: Haunted) -> None:
    with pytest.raises(NotFound):
        await facades.services.auth.erasures.erase("no-such-user", reason="operator")


async def test_ring_sealed_addresses_move_to_data_keys_then_erase_like_the_others(
    facades: Haunted,
) -> None:
    """Rows from before data keys: `haunted migrate`'s data step re-seals them."""
    auth = facades.services.auth
    cipher: PiiCipher = auth._accounts.cipher
    account = await sign_up(facades)
    ring_sealed = cipher.seal(account.email, context=EMAIL)
    async with facades.db.transaction() as session:
        await session.execute(
            update(User)
            .where(User.id == account.user_id)
            .values(email_key_id=ring_sealed.key_id, email_ciphertext=ring_sealed.ciphertext)
        )
    me = await auth.me(await principal_of(facades, account))
    assert me is not None and me.email == account.email  # still read with the ring

    assert await auth.erasures.move_to_data_keys() >= 1
    assert await auth.erasures.move_to_data_keys() == 0

    async with facades.db.read() as session:
        user = await session.get(User, account.user_id)
        assert user is not None and user.email_key_id == "user"
        moved = user.email_ciphertext
    me = await auth.me(await principal_of(facades, account))
    assert me is not None and me.email == account.email
    await auth.erasures.erase(account.user_id, reason="operator")
    with pytest.raises(Exception):  # noqa: B017 - any refusal: the ring cannot open it
        cipher.open(Sealed(ring_sealed.key_id, moved), context=EMAIL)


async def test_a_row_without_its_key_reads_as_erased(facades: Haunted, role_team: RoleTeam) -> None:
    """A restored backup brings rows back without their key (the key store is not in the
    dump): until the restore drops them again, they read as erased."""
    member: Account = await join(facades, role_team["owner"], role_team.team_id, "member")
    async with facades.db.transaction() as session:
        key = await session.get(UserKey, member.user_id)
        assert key is not None
        await session.delete(key)
    members = await facades.services.teams.members(
        await principal_of(facades, role_team["owner"]), team_id=role_team.team_id
    )
    assert {m.user_id: m.email for m in members}[member.user_id] == ERASED_EMAIL
