"""Sign-in with a TOTP second factor and recovery codes over GraphQL (issue 14, item 5):
enrol, confirm, a login that says SECOND_FACTOR_REQUIRED, codes good once, disable."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select

from services.auth.models import SecondFactor
from tests.conftest import PASSWORD, Server, register, serve, unique_email
from tests.gateway.realtime import shared_settings

ENROL = "mutation { enrolTwoFactor { secret uri } }"
CONFIRM = "mutation($c: String!) { confirmTwoFactor(code: $c) }"
DISABLE = "mutation($c: String!) { disableTwoFactor(code: $c) }"
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"
SECOND = """mutation($ch: String!, $c: String!) {
  loginSecondFactor(challenge: $ch, code: $c) { token user { id } }
}"""


@pytest.fixture(scope="module")
async def server(
    backend: str,
    migrated_template: str,
    signing_key_files: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Server]:
    directory = tmp_path_factory.mktemp("two_factor")
    async with shared_settings(backend, migrated_template, signing_key_files, directory) as base:
        settings = base.model_copy(update={"auth_rate_limit_per_account": "1000/minute"})
        async with serve(settings) as running:
            yield running


def code_of(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next time step (within the accepted window; the current step's
    code is spent)."""
    step = int(time.time() // totp.interval) + 1
    return str(totp.at(step * totp.interval))


async def challenge(server: Server, email: str) -> str:
    body = await server.graphql(LOGIN, {"e": email, "p": PASSWORD})
    assert code_of(body) == "SECOND_FACTOR_REQUIRED", body
    assert body["data"] is None
    return str(body["errors"][0]["extensions"]["challenge"])


async def test_a_second_factor_from_enrolment_to_disabling(server: Server) -> None:
    email = unique_email()
    user = await register(server, email)
    token = user["token"]
    enrolment = (await server.graphql(ENROL, token=token))["data"]["enrolTwoFactor"]
    assert enrolment["uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrolment["secret"])
    async with server.haunted.db.read() as session:  # sealed at rest
        stored = await session.scalar(select(SecondFactor))
    assert stored is not None and enrolment["secret"].encode() not in stored.secret_ciphertext

    assert code_of(await server.graphql(CONFIRM, {"c": "000000"}, token)) == "BAD_USER_INPUT"
    # Found by the fuzz: a code with a non-ASCII character made compare_digest raise.
    assert code_of(await server.graphql(CONFIRM, {"c": "00000é"}, token)) == "BAD_USER_INPUT"
    first = totp.now()
    recovery = (await server.graphql(CONFIRM, {"c": first}, token))["data"]["confirmTwoFactor"]
    assert len(recovery) == len(set(recovery)) == 10
    assert code_of(await server.graphql(ENROL, token=token)) == "CONFLICT"

    # A password alone no longer logs in: the answer says what is missing.
    wrong = await server.graphql(SECOND, {"ch": await challenge(server, email), "c": "123456"})
    assert code_of(wrong) == "UNAUTHENTICATED"
    # The code used to confirm is spent; one of a later step works, once.
    spent = await server.graphql(SECOND, {"ch": await challenge(server, email), "c": first})
    assert code_of(spent) == "UNAUTHENTICATED"
    fresh = next_code(totp)
    pending = await challenge(server, email)
    signed_in = await server.graphql(SECOND, {"ch": pending, "c": fresh})
    assert signed_in["data"]["loginSecondFactor"]["user"]["id"] == user["user"]["id"]
    again = await server.graphql(SECOND, {"ch": pending, "c": fresh})
    assert code_of(again) == "UNAUTHENTICATED"  # one try per challenge

    # A recovery code signs in once.
    by_recovery = await server.graphql(
        SECOND, {"ch": await challenge(server, email), "c": recovery[0]}
    )
    assert "errors" not in by_recovery, by_recovery
    pending = await challenge(server, email)
    reused = await server.graphql(SECOND, {"ch": pending, "c": recovery[0]})
    assert code_of(reused) == "UNAUTHENTICATED"

    assert code_of(await server.graphql(DISABLE, {"c": "nope"}, token)) == "BAD_USER_INPUT"
    assert code_of(await server.graphql(DISABLE, {"c": "nöpe"}, token)) == "BAD_USER_INPUT"
    assert await server.graphql(DISABLE, {"c": recovery[1]}, token) == {
        "data": {"disableTwoFactor": True}
    }
    assert "errors" not in await server.graphql(LOGIN, {"e": email, "p": PASSWORD})


REQUIRE = "mutation($t: ID!, $r: Boolean!) { requireTwoFactor(teamId: $t, required: $r) }"
INVITE = """mutation($t: ID!, $email: String!, $role: String!) {
  inviteMember(teamId: $t, email: $email, role: $role) { token }
}"""
ACCEPT = "mutation($token: String!) { acceptInvite(token: $token) { role } }"
MEMBERS = "query($t: ID!) { team(id: $t) { members { userId } } }"


async def turn_on(server: Server, token: str) -> None:
    secret = (await server.graphql(ENROL, token=token))["data"]["enrolTwoFactor"]["secret"]
    confirmed = await server.graphql(CONFIRM, {"c": pyotp.TOTP(secret).now()}, token)
    assert "errors" not in confirmed, confirmed


async def test_an_owner_can_require_a_second_factor_for_the_team(server: Server) -> None:
    owner = await register(server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    email = unique_email()
    member = await register(server, email)
    sent = await server.graphql(
        INVITE, {"t": team_id, "email": email, "role": "admin"}, owner["token"]
    )
    await server.graphql(ACCEPT, {"token": sent["data"]["inviteMember"]["token"]}, member["token"])

    # Not without the owner's own second factor; not by an admin.
    assert code_of(await server.graphql(REQUIRE, {"t": team_id, "r": True}, owner["token"])) == (
        "SECOND_FACTOR_REQUIRED"
    )
    assert code_of(await server.graphql(REQUIRE, {"t": team_id, "r": True}, member["token"])) == (
        "FORBIDDEN"
    )
    await turn_on(server, owner["token"])
    assert await server.graphql(REQUIRE, {"t": team_id, "r": True}, owner["token"]) == {
        "data": {"requireTwoFactor": True}
    }

    # The member, without a second factor, can do nothing in the team: the code says why.
    refused = await server.graphql(MEMBERS, {"t": team_id}, member["token"])
    assert code_of(refused) == "SECOND_FACTOR_REQUIRED", refused
    invite = {"t": team_id, "email": unique_email(), "role": "member"}
    assert code_of(await server.graphql(INVITE, invite, member["token"])) == (
        "SECOND_FACTOR_REQUIRED"
    )
    # Their own team is untouched; once they turn it on, this team opens again.
    own_team = member["user"]["memberships"][0]["team"]["id"]
    assert "errors" not in await server.graphql(MEMBERS, {"t": own_team}, member["token"])
    await turn_on(server, member["token"])
    assert "errors" not in await server.graphql(MEMBERS, {"t": team_id}, member["token"])
