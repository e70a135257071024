"""Errors: a contract code on every error; INTERNAL with a request id found in the log;
never a stack trace, SQL or an exception's class name in a response."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.app import GraphQLConfig
from tests.conftest import Server, register
from tests.gateway.conftest import (
    CONTRACT_CODES,
    SECRET_SQL,
    Calls,
    assert_no_leak,
    codes_of,
    errors_of,
    serve_schema,
)


async def test_an_unexpected_error_is_internal_with_a_request_id_in_the_log(
    calls: Calls,
) -> None:
    async with serve_schema(calls=calls) as client:
        with capture_logs() as logs:
            response = await client.post("/graphql", json={"query": "{ hits boom }"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"hits": 1, "boom": None}
    [error] = errors_of(body)
    assert error["message"] == "internal error"
    assert error["path"] == ["boom"]
    assert error["extensions"]["code"] == "INTERNAL"
    request_id = error["extensions"]["requestId"]
    assert_no_leak(response)
    [logged] = [entry for entry in logs if entry.get("request_id") == request_id]
    assert logged["log_level"] == "error"
    assert isinstance(logged["exc_info"], RuntimeError)
    assert SECRET_SQL in str(logged["exc_info"])  # the log has what the client does not


async def test_a_domain_error_keeps_its_code_and_message(calls: Calls) -> None:
    async with serve_schema(calls=calls) as client:
        response = await client.post("/graphql", json={"query": "{ forbidden }"})
    [error] = errors_of(response.json())
    assert error["message"] == "billing:manage is required"
    assert error["extensions"] == {"code": "FORBIDDEN"}


async def test_a_failure_outside_the_resolvers_is_internal_too() -> None:
    async def broken_context(_request: Any, _data: Any = None) -> dict[str, Any]:
        raise RuntimeError(SECRET_SQL)

    async with serve_schema(context_value=broken_context) as client:
        with capture_logs() as logs:
            response = await client.post("/graphql", json={"query": "{ hits }"})
    assert response.status_code == 500
    [error] = errors_of(response.json())
    assert error["extensions"]["code"] == "INTERNAL"
    assert_no_leak(response)
    assert any(entry.get("request_id") == error["extensions"]["requestId"] for entry in logs)


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"[" * 100_000, "application/json"),  # nested past the JSON parser's recursion
        (b'"a string"', "application/json"),
        (b"42", "application/json"),
        (b"{}", "application/json"),
        (b'{"query": 7}', "application/json"),
        (b'{"query": "{ hits }", "variables": []}', "application/json"),
        (b'{"query": "{ hits }", "operationName": 3}', "application/json"),
        (b"", "application/json"),
    ],
)
async def test_malformed_requests_are_bad_user_input(
    content: bytes, content_type: str, calls: Calls
) -> None:
    async with serve_schema(GraphQLConfig(), calls=calls) as client:
        response = await client.post(
            "/graphql", content=content, headers={"content-type": content_type}
        )
    assert response.status_code == 400, response.text
    assert codes_of(response.json()) == ["BAD_USER_INPUT"]
    assert_no_leak(response)
    assert calls.count == 0


async def test_errors_of_the_gateway_carry_contract_codes(server: Server) -> None:
    registered = await register(server)
    cases = [
        ("{ eventCounts { name } }", {}, None, "UNAUTHENTICATED"),
        ("{ eventCounts { name } }", {}, "not-a-jwt", "UNAUTHENTICATED"),
        (
            "query($since: DateTime) { eventCounts(since: $since) { name } }",
            {"since": "yesterday"},
            registered["token"],
            "BAD_USER_INPUT",
        ),
        ("{ me { nope } }", {}, None, "BAD_USER_INPUT"),
        ("{ me { id }", {}, None, "BAD_USER_INPUT"),
    ]
    for query, variables, token, code in cases:
        async with server.client(token) as client:
            response = await client.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code < 500
        assert codes_of(response.json()) == [code], (query, response.text)
        assert set(codes_of(response.json())) <= CONTRACT_CODES
        assert_no_leak(response)
