"""The auth facade on both backends: accounts, lockout, sessions, refresh tokens."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from services.auth import AuthService, ClientInfo
from services.auth.models import RefreshToken, User, UserSession
from services.errors import BadUserInput, Conflict, NotFound, RateLimited, Unauthenticated
from tests.conftest import PASSWORD, unique_email
from tests.services.auth.conftest import principal_of, sign_up


def auth(app: Haunted) -> AuthService:
    return app.services.auth


async def outbox_topics(app: Haunted) -> Counter[str]:
    async with app.db.read() as session:
        return Counter((await session.scalars(select(OutboxRecord.topic))).all())


async def outbox_records(app: Haunted) -> list[OutboxRecord]:
    async with app.db.read() as session:
        return list((await session.scalars(select(OutboxRecord))).all())


async def test_register_creates_user_team_and_events(facades: Haunted) -> None:
    email = unique_email()
    result = await auth(facades).register(email.upper(), PASSWORD, "Acme")
    assert result.user.email == email
    assert [(m.team_name, m.role) for m in result.user.memberships] == [("Acme", "owner")]
    topics = await outbox_topics(facades)
    assert topics == Counter({"user.registered": 1, "team.created": 1, "team.member_added": 1})
    principal = await auth(facades).authenticate(result.token)
    assert principal.teams == {result.user.memberships[0].team_id: "owner"}


async def test_email_is_unique_case_insensitively_and_nothing_is_written(facades: Haunted) -> None:
    email = unique_email()
    await auth(facades).register(email, PASSWORD)
    before = await outbox_topics(facades)
    with pytest.raises(Conflict):
        await auth(facades).register(email.upper(), PASSWORD)
    with pytest.raises(Conflict):
        await auth(facades).register("ＵＳＥＲ" + email[4:], PASSWORD)  # fullwidth look-alike
    assert await outbox_topics(facades) == before


@pytest.mark.parametrize(
    ("email", "password"),
    [("not-an-email", PASSWORD), ("ok@example.com", "short"), ("ok@example.com", "x" * 1_000_000)],
)
async def test_bad_registration_writes_nothing(facades: Haunted, email: str, password: str) -> None:
    with pytest.raises(BadUserInput):
        await auth(facades).register(email, password)
    assert await outbox_topics(facades) == Counter()
    async with facades.db.read() as session:
        assert (await session.scalars(select(User))).all() == []


async def test_email_is_stored_encrypted(facades: Haunted) -> None:
    email = unique_email()
    await auth(facades).register(email, PASSWORD)
    async with facades.db.read() as session:
        user = (await session.scalars(select(User))).one()
    assert email.encode() not in user.email_ciphertext
    assert email not in user.email_hash
    assert user.password_hash.startswith("$bcrypt-sha256$")


async def test_login_unknown_email_and_wrong_password_fail_alike(facades: Haunted) -> None:
    email = unique_email()
    await auth(facades).register(email, PASSWORD)
    with pytest.raises(Unauthenticated) as unknown:
        await auth(facades).login(unique_email(), PASSWORD)
    with pytest.raises(Unauthenticated) as wrong:
        await auth(facades).login(email, PASSWORD + "!")
    assert str(unknown.value) == str(wrong.value)
    assert (await outbox_topics(facades))["user.login_failed"] == 2


async def test_five_failures_lock_the_account_until_it_expires(facades: Haunted) -> None:
    email = unique_email()
    await auth(facades).register(email, PASSWORD)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            await auth(facades).login(email, "wrong password!!")
    with pytest.raises(Unauthenticated) as locked:
        await auth(facades).login(email, PASSWORD)  # the right password, but locked
    # Refused as a wrong password is: a lock does not tell that the account exists.
    assert str(locked.value) == "invalid email or password"
    assert "lockedUntil" not in locked.value.extensions
    topics = await outbox_topics(facades)
    assert topics["user.locked"] == 1 and topics["user.logged_in"] == 0
    locked_event = next(r for r in await outbox_records(facades) if r.topic == "user.locked")
    assert "locked_until" in json.loads(locked_event.value)
    # The lock runs out (Redis expires it; a password reset clears it the same way).
    await facades.services.auth._lockout.clear(facades.services.auth._accounts.email_hash(email))
    assert (await auth(facades).login(email, PASSWORD)).user.email == email


async def test_logout_ends_the_token_at_once(facades: Haunted) -> None:
    result = await auth(facades).register(unique_email(), PASSWORD)
    principal = await auth(facades).authenticate(result.token)
    assert await auth(facades).logout(principal)
    with pytest.raises(Unauthenticated):
        await auth(facades).authenticate(result.token)
    with pytest.raises(Unauthenticated):
        await auth(facades).refresh(result.refresh_token)
    assert (await outbox_topics(facades))["user.logged_out"] == 1


async def test_refresh_rotates_and_reuse_revokes_the_family(facades: Haunted) -> None:
    first = await auth(facades).register(unique_email(), PASSWORD)
    second = await auth(facades).refresh(first.refresh_token)
    assert second.session_id == first.session_id
    assert second.refresh_token != first.refresh_token
    await auth(facades).authenticate(second.token)
    with pytest.raises(Unauthenticated, match="already used"):
        await auth(facades).refresh(first.refresh_token)  # a stolen copy comes back
    with pytest.raises(Unauthenticated):
        await auth(facades).authenticate(second.token)  # the whole session is gone
    with pytest.raises(Unauthenticated):
        await auth(facades).refresh(second.refresh_token)
    revoked = [r for r in await outbox_records(facades) if r.topic == "session.revoked"]
    assert len(revoked) == 1
    assert json.loads(revoked[0].value)["reason"] == "refresh_token_reuse"


async def test_refresh_restores_a_session_that_idled_out_of_redis(facades: Haunted) -> None:
    result = await auth(facades).register(unique_email(), PASSWORD)
    await facades.redis.delete(f"haunted:session:{result.session_id}")
    with pytest.raises(Unauthenticated):
        await auth(facades).authenticate(result.token)
    refreshed = await auth(facades).refresh(result.refresh_token)
    assert (await auth(facades).authenticate(refreshed.token)).session_id == result.session_id


@pytest.mark.parametrize("token", ["", "hr_unknown", "garbage", "hr_" + "x" * 500])
async def test_bad_refresh_tokens_are_refused(facades: Haunted, token: str) -> None:
    await auth(facades).register(unique_email(), PASSWORD)
    before = await outbox_topics(facades)
    with pytest.raises(Unauthenticated):
        await auth(facades).refresh(token)
    assert await outbox_topics(facades) == before


async def test_expired_refresh_token_is_refused(facades: Haunted) -> None:
    result = await auth(facades).register(unique_email(), PASSWORD)
    async with facades.db.transaction() as session:
        await session.execute(
            update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(Unauthenticated):
        await auth(facades).refresh(result.refresh_token)


async def test_sessions_lists_and_revokes(facades: Haunted) -> None:
    email = unique_email()
    first = await auth(facades).register(email, PASSWORD)
    second = await auth(facades).login(email, PASSWORD, ClientInfo("10.0.0.1", "phone"))
    principal = await auth(facades).authenticate(second.token)
    sessions = await auth(facades).sessions(principal)
    assert {s.id for s in sessions} == {first.session_id, second.session_id}
    assert [s.current for s in sessions if s.id == second.session_id] == [True]
    assert await auth(facades).revoke_session(principal, first.session_id)
    with pytest.raises(Unauthenticated):
        await auth(facades).authenticate(first.token)
    assert [s.id for s in await auth(facades).sessions(principal)] == [second.session_id]
    other = await auth(facades).register(unique_email(), PASSWORD)
    with pytest.raises(NotFound):  # someone else's session
        await auth(facades).revoke_session(principal, other.session_id)
    await auth(facades).authenticate(other.token)
    async with facades.db.read() as session:
        row = await session.get(UserSession, first.session_id)
    assert row is not None and row.revoked_at is not None


async def test_login_is_rate_limited_per_account(facades: Haunted) -> None:
    limited = Haunted.build(
        facades.settings.model_copy(update={"auth_rate_limit_per_account": "2/minute"})
    )
    email = unique_email()
    await limited.services.auth.register(email, PASSWORD)
    for _ in range(2):
        await limited.services.auth.login(email, PASSWORD)
    with pytest.raises(RateLimited) as error:
        await limited.services.auth.login(email, PASSWORD)
    assert error.value.extensions["retryAfter"] >= 1
    await limited.redis.aclose()
    await limited.db.dispose()


async def test_published_records_carry_no_secrets(facades: Haunted) -> None:
    email = unique_email()
    result = await auth(facades).register(email, PASSWORD)
    await auth(facades).login(email, PASSWORD)
    with pytest.raises(Unauthenticated):
        await auth(facades).login(email, "wrong password!!")
    refreshed = await auth(facades).refresh(result.refresh_token)
    for record in await outbox_records(facades):
        text = record.value.decode() + json.dumps(record.headers)
        for secret in (email, PASSWORD, result.token, result.refresh_token, refreshed.token):
            assert secret not in text, record.topic


async def test_me_reads_the_user_their_key_and_teams_in_one_statement(facades: Haunted) -> None:
    alice = await sign_up(facades)
    team = await facades.services.teams.create_team(await principal_of(facades, alice), "Second")
    principal = await principal_of(facades, alice)
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    engine = facades.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        me = await auth(facades).me(principal)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    # `me` is on every page load: one query, whatever the number of teams (a read's
    # BEGIN on SQLite aside: PostgreSQL runs it without a transaction).
    assert [s.split()[0] for s in statements if s != "BEGIN"] == ["SELECT"]
    assert me is not None
    assert me.email == alice.email
    assert [(m.team_id, m.role) for m in me.memberships] == [
        (alice.own_team_id, "owner"),
        (team.id, "owner"),
    ]
    assert [m.team_name for m in me.memberships][1] == "Second"
