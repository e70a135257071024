"""Production defaults (issue 14, finding 6): /metrics behind a bearer token (or refused
in prod without one), and per-IP limits that see the client behind a trusted proxy."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from haunted.settings import Settings
from tests.conftest import serve, unique_email
from tests.gateway.conftest import gateway_in_process

LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }"


async def test_metrics_need_the_bearer_token_when_one_is_set(settings: Settings) -> None:
    guarded = settings.model_copy(update={"metrics_token": SecretStr("s3cret-scrape-token")})
    async with gateway_in_process(guarded) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape-token"})
        assert good.status_code == 200 and "haunted_" in good.text


async def test_metrics_are_open_in_tests_and_refused_in_prod_without_a_token(
    settings: Settings,
) -> None:
    async with gateway_in_process(settings) as client:
        assert (await client.get("/metrics")).status_code == 200
    prod = settings.model_copy(update={"env": "prod"})
    async with gateway_in_process(prod) as client:
        assert (await client.get("/metrics")).status_code == 403


def code_of(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return str(errors[0]["extensions"]["code"]) if errors else None


@pytest.mark.parametrize("trusted", [True, False])
async def test_the_per_ip_limit_sees_the_client_behind_a_trusted_proxy(
    settings: Settings, trusted: bool
) -> None:
    chosen = settings.model_copy(
        update={
            "auth_rate_limit_per_ip": "2/minute",
            "forwarded_allow_ips": "127.0.0.1" if trusted else "192.0.2.1",
        }
    )
    async with serve(chosen) as server:

        async def attempt(client_ip: str) -> str | None:
            async with server.client() as http:
                response = await http.post(
                    "/graphql",
                    json={"query": LOGIN, "variables": {"e": unique_email(), "p": "x" * 12}},
                    headers={"X-Forwarded-For": client_ip},
                )
            return code_of(response.json())

        assert [await attempt("203.0.113.1") for _ in range(3)] == [
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "RATE_LIMITED",
        ]
        # Another client behind the same proxy has a bucket of its own, if the proxy is
        # trusted; otherwise everyone is the proxy, and shares its spent bucket.
        expected = "UNAUTHENTICATED" if trusted else "RATE_LIMITED"
        assert await attempt("203.0.113.2") == expected
