"""No oracle, no lockout abuse (issue 14, finding 3): a locked account answers as an
unknown email does; one client's failures lock that client out, not the owner's own;
failures from many clients together lock the account everywhere."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from events.outbox import OutboxRecord
from events.testing import RecordingProducer
from haunted.runtime import Haunted
from haunted.settings import Settings
from services.auth import AuthService, ClientInfo
from services.errors import Unauthenticated
from tests.conftest import PASSWORD, unique_email

ATTACKER = ClientInfo(ip="203.0.113.9", user_agent="curl/8")
OWNER = ClientInfo(ip="198.51.100.7", user_agent="Firefox")
WRONG = "not the password at all"


@pytest.fixture
async def facades(
    offline_settings: Settings, recording_producer: RecordingProducer
) -> AsyncIterator[Haunted]:
    """Rate limits out of the way (they are tested elsewhere); a low account threshold.
    No broker, as tests/conftest.py's `facades`."""
    tuned = offline_settings.model_copy(
        update={
            "auth_rate_limit_per_ip": "1000/minute",
            "auth_rate_limit_per_account": "1000/minute",
            "lockout_account_threshold": 8,
        }
    )
    app = Haunted.build(tuned, producer=recording_producer)
    try:
        yield app
    finally:
        await app.redis.aclose()
        await app.db.dispose()


def auth(app: Haunted) -> AuthService:
    return app.services.auth


async def refusal(app: Haunted, email: str, password: str, client: ClientInfo) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as refused:
        await auth(app).login(email, password, client)
    return refused.value


async def locks(app: Haunted) -> list[dict[str, str]]:
    async with app.db.read() as session:
        rows = await session.scalars(
            select(OutboxRecord).where(OutboxRecord.topic == "user.locked")
        )
        return [json.loads(row.value) for row in rows.all()]


async def test_locked_wrong_password_and_unknown_email_answer_alike(facades: Haunted) -> None:
    victim = unique_email()
    await auth(facades).register(victim, PASSWORD)
    for _ in range(5):
        await refusal(facades, victim, WRONG, ATTACKER)
    locked = await refusal(facades, victim, PASSWORD, ATTACKER)  # right password, locked
    wrong = await refusal(facades, victim, WRONG + "!", OWNER)
    unknown = await refusal(facades, unique_email(), PASSWORD, ATTACKER)
    # An unknown email failed five times from one client is "locked" just the same.
    ghost = unique_email()
    for _ in range(5):
        await refusal(facades, ghost, WRONG, ATTACKER)
    ghost_locked = await refusal(facades, ghost, PASSWORD, ATTACKER)
    answers = {
        (str(e), tuple(sorted(e.extensions.items())))
        for e in (locked, wrong, unknown, ghost_locked)
    }
    assert answers == {("invalid email or password", ())}


async def test_an_attacker_cannot_lock_the_owner_out_of_their_own_client(
    facades: Haunted,
) -> None:
    victim = unique_email()
    await auth(facades).register(victim, PASSWORD)
    for _ in range(12):  # over and over, renewing the lock as the finding described
        await refusal(facades, victim, WRONG, ATTACKER)
    await refusal(facades, victim, PASSWORD, ATTACKER)
    assert (await auth(facades).login(victim, PASSWORD, OWNER)).user.email == victim
    assert [event["scope"] for event in await locks(facades)] == ["client"]


async def test_failures_from_many_clients_lock_the_account_everywhere(facades: Haunted) -> None:
    victim = unique_email()
    await auth(facades).register(victim, PASSWORD)
    for index in range(8):  # the account threshold, four failures per client at most
        client = ClientInfo(ip=f"192.0.2.{index // 4}")
        await refusal(facades, victim, WRONG, client)
    refused = await refusal(facades, victim, PASSWORD, OWNER)
    assert str(refused) == "invalid email or password"
    assert [event["scope"] for event in await locks(facades)] == ["account"]
