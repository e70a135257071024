"""Password reset, password change and email verification over GraphQL (issue 14,
findings 3 and 5): single-use tokens mailed sealed, no answer that tells whether an
address has an account, a reset that unlocks, changes that end the other sessions."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from events.outbox import OutboxRecord
from haunted.keyring import load_pii_keys
from services.auth import EventUnsealer, PiiCipher
from services.auth.account_tokens import code_context
from services.auth.crypto import Sealed
from tests.conftest import PASSWORD, Server, register, serve, unique_email
from tests.gateway.realtime import shared_settings

LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
REGISTER = "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { token } }"
SIGN_UP = "mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) }"
VERIFY = "mutation($t: String!) { verifyEmail(token: $t) }"
REQUEST_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"
RESET = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }"
CHANGE = "mutation($c: String!, $n: String!) { changePassword(current: $c, new: $n) }"
ME = "{ sessions { id } }"  # needs a live session (me answers null without one)
NEW_PASSWORD = "an entirely new passphrase"


@pytest.fixture(scope="module")
async def servers(
    backend: str,
    migrated_template: str,
    signing_key_files: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Server, Server]]:
    """Two gateways over the same stores: email verification off (dev, tests) and on (prod)."""
    directory = tmp_path_factory.mktemp("recovery")
    async with shared_settings(backend, migrated_template, signing_key_files, directory) as base:
        settings = base.model_copy(update={"auth_rate_limit_per_account": "1000/minute"})
        verifying = settings.model_copy(update={"require_email_verification": True})
        async with serve(settings) as plain, serve(verifying, workers=()) as strict:
            yield plain, strict


@pytest.fixture
def server(servers: tuple[Server, Server]) -> Server:
    return servers[0]


async def call(server: Server, query: str, variables: dict[str, Any], token: str = "") -> Any:
    return await server.graphql(query, variables, token=token or None)


def code_of(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def mailed(server: Server, topic: str, user_id: str) -> tuple[str, str]:
    """What a mail channel gets from the outbox: (address, token), opened with the ring."""
    async with server.haunted.db.read() as session:
        rows = await session.scalars(
            select(OutboxRecord).where(OutboxRecord.topic == topic).order_by(OutboxRecord.seq)
        )
        records = [row for row in rows.all() if json.loads(row.value)["user_id"] == user_id]
    assert records, f"no {topic} for {user_id}"
    data = json.loads(records[-1].value)
    ring, lookup = load_pii_keys(server.haunted.settings)
    cipher = PiiCipher(ring, lookup)
    # The address is sealed with the user's data key, the token with the ring: open
    # both as the email channel does.
    async with server.haunted.db.read() as session:
        address = await EventUnsealer(cipher)(
            session,
            data["address_key_id"],
            base64.b64decode(data["sealed_address"]),
            "email",
        )
    assert address is not None
    token = cipher.open(
        Sealed(data["code_key_id"], base64.b64decode(data["sealed_code"])),
        context=code_context(data["request_id"]),
    )
    # Nothing in clear: neither the address nor the token is in the record.
    assert address.encode() not in records[-1].value and token.encode() not in records[-1].value
    return address, token


async def test_a_reset_link_unlocks_the_account_and_ends_every_session(server: Server) -> None:
    email = unique_email()
    user = await register(server, email)
    for _ in range(5):  # locked out from this client
        await call(server, LOGIN, {"e": email, "p": "not the password at all"})
    assert code_of(await call(server, LOGIN, {"e": email, "p": PASSWORD})) == "UNAUTHENTICATED"

    known = await call(server, REQUEST_RESET, {"e": email})
    unknown = await call(server, REQUEST_RESET, {"e": unique_email()})
    assert known == unknown == {"data": {"requestPasswordReset": True}}
    address, token = await mailed(server, "user.password_reset_requested", user["user"]["id"])
    assert address == email

    short = await call(server, RESET, {"t": token, "p": "short"})
    assert code_of(short) == "BAD_USER_INPUT"  # refused before the token is spent
    assert await call(server, RESET, {"t": token, "p": NEW_PASSWORD}) == {
        "data": {"resetPassword": True}
    }
    assert code_of(await call(server, ME, {}, user["token"])) == "UNAUTHENTICATED"
    assert code_of(await call(server, RESET, {"t": token, "p": NEW_PASSWORD})) == (
        "BAD_USER_INPUT"
    )  # single use
    assert code_of(await call(server, LOGIN, {"e": email, "p": PASSWORD})) == "UNAUTHENTICATED"
    logged_in = await call(server, LOGIN, {"e": email, "p": NEW_PASSWORD})  # unlocked
    assert "errors" not in logged_in, logged_in


async def test_changing_the_password_ends_every_other_session(server: Server) -> None:
    email = unique_email()
    first = await register(server, email)
    second = (await call(server, LOGIN, {"e": email, "p": PASSWORD}))["data"]["login"]
    wrong = await call(
        server, CHANGE, {"c": "not the password at all", "n": NEW_PASSWORD}, first["token"]
    )
    assert code_of(wrong) == "FORBIDDEN"
    assert "errors" not in await call(server, ME, {}, second["token"])

    changed = await call(server, CHANGE, {"c": PASSWORD, "n": NEW_PASSWORD}, first["token"])
    assert changed == {"data": {"changePassword": True}}
    assert "errors" not in await call(server, ME, {}, first["token"])
    assert code_of(await call(server, ME, {}, second["token"])) == "UNAUTHENTICATED"
    assert "errors" not in await call(server, LOGIN, {"e": email, "p": NEW_PASSWORD})


async def test_without_verification_register_answers_as_the_contract_says(
    server: Server,
) -> None:
    email = unique_email()
    assert "errors" not in await call(server, REGISTER, {"e": email, "p": PASSWORD})
    assert code_of(await call(server, REGISTER, {"e": email, "p": PASSWORD})) == "CONFLICT"


async def test_with_verification_registration_reveals_nothing(
    servers: tuple[Server, Server],
) -> None:
    plain, strict = servers
    taken = unique_email()
    await register(plain, taken)
    fresh = unique_email()

    refused = [await call(strict, REGISTER, {"e": e, "p": PASSWORD}) for e in (taken, fresh)]
    assert refused[0] == refused[1] and code_of(refused[0]) == "FORBIDDEN"
    for spelling in (taken, taken.upper(), fresh):
        assert await call(strict, SIGN_UP, {"e": spelling, "p": PASSWORD}) == {
            "data": {"signUp": True}
        }

    # Whoever knows the password is told the address awaits verification; nobody else is.
    before = await call(strict, LOGIN, {"e": fresh, "p": PASSWORD})
    assert before["errors"][0]["extensions"]["reason"] == "EMAIL_NOT_VERIFIED"
    stranger = await call(strict, LOGIN, {"e": fresh, "p": "not the password at all"})
    assert "reason" not in stranger["errors"][0]["extensions"]

    async with strict.haunted.db.read() as session:
        rows = await session.scalars(
            select(OutboxRecord.value).where(
                OutboxRecord.topic == "user.email_verification_requested"
            )
        )
        user_ids = [json.loads(value)["user_id"] for value in rows.all()]
    address, token = await mailed(strict, "user.email_verification_requested", user_ids[-1])
    assert address == fresh  # the taken address got nothing new
    assert await call(strict, VERIFY, {"t": token}) == {"data": {"verifyEmail": True}}
    assert code_of(await call(strict, VERIFY, {"t": token})) == "BAD_USER_INPUT"
    assert "errors" not in await call(strict, LOGIN, {"e": fresh, "p": PASSWORD})
