"""Auth through the real gateway: tokens, refresh, sessions, revocation, rate limits, secrets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import socketio

from haunted.logging import configure_logging
from tests.conftest import LOGIN, PASSWORD, Server, eventually, register, unique_email

REFRESH = """mutation($token: String!) {
  refreshToken(refreshToken: $token) { token refreshToken sessionId user { id } }
}"""


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def test_me_is_null_without_a_valid_token_and_guarded_fields_say_why(server: Server) -> None:
    assert (await server.graphql("{ me { id } }"))["data"]["me"] is None
    assert (await server.graphql("{ me { id } }", token="garbage"))["data"]["me"] is None
    assert code(await server.graphql("{ sessions { id } }")) == "UNAUTHENTICATED"
    body = await server.graphql("{ sessions { id } }", token="garbage")
    assert code(body) == "UNAUTHENTICATED" and "stack" not in str(body).lower()


async def test_refresh_sessions_and_revocation_over_graphql(server: Server) -> None:
    first = await register(server)
    login = await server.graphql(LOGIN, {"email": first["user"]["email"], "password": PASSWORD})
    second = login["data"]["login"]
    sessions = await server.graphql("{ sessions { id current } }", token=second["token"])
    assert len(sessions["data"]["sessions"]) == 2

    refreshed = await server.graphql(REFRESH, {"token": first["refreshToken"]})
    assert refreshed["data"]["refreshToken"]["sessionId"] == first["sessionId"]
    reused = await server.graphql(REFRESH, {"token": first["refreshToken"]})
    assert code(reused) == "UNAUTHENTICATED"
    # reuse revoked the first session's family; the second session lives on
    assert (await server.graphql("{ me { id } }", token=first["token"]))["data"]["me"] is None
    me = await server.graphql("{ me { id } }", token=second["token"])
    assert me["data"]["me"]["id"] == first["user"]["id"]


async def test_revoking_a_session_disconnects_its_sockets(server: Server) -> None:
    user = await register(server)
    other = await server.graphql(LOGIN, {"email": user["user"]["email"], "password": PASSWORD})
    other_token = other["data"]["login"]["token"]
    disconnected = asyncio.Event()
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("disconnect", lambda *_: disconnected.set())
    await sio.connect(
        server.url, auth={"token": user["token"]}, transports=["websocket"], wait_timeout=10
    )
    try:
        revoked = await server.graphql(
            "mutation($id: ID!) { revokeSession(id: $id) }",
            {"id": user["sessionId"]},
            token=other_token,
        )
        assert revoked["data"]["revokeSession"] is True
        await asyncio.wait_for(disconnected.wait(), 10)
        refused = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(
                server.url, auth={"token": user["token"]}, transports=["websocket"]
            )
    finally:
        await sio.disconnect()


async def test_logout_takes_effect_at_once(server: Server) -> None:
    user = await register(server)
    assert (await server.graphql("mutation { logout }", token=user["token"]))["data"]["logout"]
    assert code(await server.graphql("mutation { logout }", token=user["token"])) == (
        "UNAUTHENTICATED"
    )


async def test_oversized_and_bad_passwords_are_refused(server: Server) -> None:
    huge = await server.graphql(LOGIN, {"email": unique_email(), "password": "x" * 1_000_000})
    assert code(huge) == "BAD_USER_INPUT"
    long = await server.graphql(
        "mutation($e: String!, $p: String!) { register(email: $e, password: $p) { token } }",
        {"e": unique_email(), "p": "y" * 1025},
    )
    assert code(long) == "BAD_USER_INPUT"
    assert "1024" in long["errors"][0]["message"]


async def test_login_attempts_are_rate_limited_per_account(server: Server) -> None:
    user = await register(server)
    email = user["user"]["email"]
    codes = []
    for _ in range(12):
        body = await server.graphql(LOGIN, {"email": email, "password": "not the password!"})
        codes.append(code(body))
    assert "RATE_LIMITED" in codes
    limited = await server.graphql(LOGIN, {"email": email, "password": PASSWORD})
    assert code(limited) == "RATE_LIMITED"
    assert limited["errors"][0]["extensions"]["retryAfter"] >= 1


async def test_jwks_serves_the_verifying_key(server: Server) -> None:
    async with server.client() as client:
        keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys and all(k["alg"] == "RS256" and "d" not in k for k in keys)


async def test_logs_never_carry_passwords_tokens_or_emails(
    server: Server, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", json=True)
    try:
        email = unique_email()
        registered = await register(server, email)
        await server.graphql(LOGIN, {"email": email, "password": "wrong password here"})
        await server.graphql(LOGIN, {"email": email, "password": PASSWORD})
        await server.graphql(REFRESH, {"token": registered["refreshToken"]})
        await server.graphql(REFRESH, {"token": registered["refreshToken"]})  # reuse: warns

        async def logged() -> str:
            out, err = capfd.readouterr()
            logged.text += out + err  # type: ignore[attr-defined]
            return logged.text  # type: ignore[attr-defined]

        logged.text = ""  # type: ignore[attr-defined]
        text = await eventually(logged)
        for secret in (PASSWORD, registered["token"], registered["refreshToken"], email):
            assert secret not in text
    finally:
        logging.getLogger().handlers.clear()
