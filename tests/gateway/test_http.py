"""GraphQL over HTTP as the spec says (gateway/app.py): media types and status codes,
GET for queries only, JSON bodies only; CORS and Socket.IO origins from the one
allowlist; /readyz without the broker, whose state /healthz and /metrics report."""

from __future__ import annotations

import os
import signal
from typing import Any

import httpx
import pytest
import socketio
from prometheus_client import REGISTRY
from starlette.responses import JSONResponse

from events.embedded import EmbeddedBroker
from gateway.app import GRAPHQL_RESPONSE, JSON, GraphQLConfig, _json, response_media_type
from haunted.settings import Settings
from tests.conftest import Server, eventually, free_port, register
from tests.gateway.conftest import Calls, assert_no_leak, codes_of, gateway_in_process, serve_schema

STRICT = {"accept": GRAPHQL_RESPONSE}


async def post(client: httpx.AsyncClient, query: str, **headers: str) -> httpx.Response:
    return await client.post("/graphql", json={"query": query}, headers=headers)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("application/json", JSON),
        ("*/*", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE};q=0", JSON),
    ],
)
def test_the_response_media_type_follows_accept(accept: str | None, expected: str) -> None:
    assert response_media_type(accept) == expected


# (query, what went wrong): each a well-formed request.
REQUEST_ERRORS = [
    ("{ hits ", "a document that does not parse"),
    ("{ nope }", "a field the schema does not have"),
    ("query A { hits } query B { tags }", "no operationName among two operations"),
    ("query($n: Int!) { items(first: $n) { id } }", "a required variable missing"),
]


@pytest.mark.parametrize(("query", "what"), REQUEST_ERRORS)
async def test_a_request_error_is_200_as_json_and_400_as_graphql_response(
    query: str, what: str, calls: Calls
) -> None:
    async with serve_schema(calls=calls) as client:
        as_json = await post(client, query)
        strict = await post(client, query, **STRICT)
    assert as_json.status_code == 200, what
    assert as_json.headers["content-type"] == JSON
    assert strict.status_code == 400, what
    assert strict.headers["content-type"] == GRAPHQL_RESPONSE
    for response in (as_json, strict):
        assert "data" not in response.json()  # nothing was executed
        assert codes_of(response.json()) == ["BAD_USER_INPUT"]
    assert calls.count == 0


async def test_a_resolver_error_is_200_in_both_media_types(calls: Calls) -> None:
    """The bug Apollo Client reported as a network error: a failed non-null root
    field makes `data` null, and that was answered 400."""
    async with serve_schema(calls=calls) as client:
        as_json = await post(client, "{ guarded }")
        strict = await post(client, "{ guarded }", **STRICT)
        partial = await post(client, "{ hits forbidden }", **STRICT)
    for response in (as_json, strict):
        assert response.status_code == 200, response.text
        assert response.json()["data"] is None  # executed: `data` is present, and null
        assert codes_of(response.json()) == ["UNAUTHENTICATED"]
    assert partial.status_code == 200
    assert partial.json()["data"] == {"hits": 3, "forbidden": None}
    assert codes_of(partial.json()) == ["FORBIDDEN"]


async def test_resolver_errors_of_the_gateway_are_200(server: Server) -> None:
    registered = await register(server)
    async with server.client() as client:
        unauthenticated = await post(client, "{ eventCounts { name } }")
        conflict = await client.post(
            "/graphql",
            json={
                "query": "mutation($e: String!, $p: String!) { register(email: $e, password: $p)"
                " { token } }",
                "variables": {"e": registered["user"]["email"], "p": "another long password"},
            },
        )
    assert unauthenticated.status_code == 200
    assert codes_of(unauthenticated.json()) == ["UNAUTHENTICATED"]
    assert conflict.status_code == 200
    assert codes_of(conflict.json()) == ["CONFLICT"]


@pytest.mark.parametrize(
    "body",
    [b"{", b"{}", b'{"query": 7}', b'{"query": "{ hits }", "variables": []}'],
)
async def test_a_malformed_request_stays_400_in_both_media_types(body: bytes, calls: Calls) -> None:
    async with serve_schema(calls=calls) as client:
        for accept in (JSON, GRAPHQL_RESPONSE):
            response = await client.post(
                "/graphql", content=body, headers={"content-type": JSON, "accept": accept}
            )
            assert response.status_code == 400, (body, accept)
            assert response.headers["content-type"] == accept
            assert codes_of(response.json()) == ["BAD_USER_INPUT"]
    assert calls.count == 0


async def test_get_runs_queries_and_refuses_mutations_with_405(calls: Calls) -> None:
    async with serve_schema(calls=calls) as client:
        query = await client.get("/graphql", params={"query": "{ hits }"})
        mutation = await client.get("/graphql", params={"query": "mutation { bump }"})
        named = await client.get(
            "/graphql",
            params={"query": "query Q { hits } mutation M { bump }", "operationName": "M"},
            headers=STRICT,
        )
        chosen_query = await client.get(
            "/graphql",
            params={"query": "query Q { hits } mutation M { bump }", "operationName": "Q"},
        )
        no_query = await client.get("/graphql", headers={"accept": JSON})
    assert query.status_code == 200 and query.json() == {"data": {"hits": 1}}
    for refused, name in ((mutation, ""), (named, " 'M'")):
        assert refused.status_code == 405
        assert refused.headers["allow"] == "POST"
        [error] = refused.json()["errors"]
        assert error["message"] == (
            f"GET runs queries only: send the mutation{name} with POST "
            "(Content-Type: application/json)"
        )
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert chosen_query.json() == {"data": {"hits": 2}}
    assert no_query.status_code == 400
    assert calls.fields == ["hits", "hits"]  # the mutations never ran


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
            b'{"query": "mutation { bump }"}\r\n--x--\r\n',
            "multipart/form-data is not supported",
        ),
        ("text/plain", b'{"query": "{ hits }"}', "unsupported content type 'text/plain'"),
        ("application/x-www-form-urlencoded", b"query=%7B+hits+%7D", "unsupported content type"),
        (None, b'{"query": "{ hits }"}', "needs Content-Type: application/json"),
    ],
)
async def test_a_post_that_is_not_json_gets_415(
    content_type: str | None, body: bytes, message: str, calls: Calls
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with serve_schema(calls=calls) as client:
        response = await client.post("/graphql", content=body, headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == JSON
    [error] = response.json()["errors"]
    assert message in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert_no_leak(response)
    assert calls.count == 0


async def test_a_batch_answers_in_the_negotiated_media_type(calls: Calls) -> None:
    async with serve_schema(calls=calls) as client:
        response = await client.post(
            "/graphql",
            json=[{"query": "{ hits }"}, {"query": "{ nope }"}, {"variables": {}}],
            headers=STRICT,
        )
    assert response.status_code == 200
    assert response.headers["content-type"] == GRAPHQL_RESPONSE
    first, second, third = response.json()
    assert first == {"data": {"hits": 1}}
    assert codes_of(second) == ["BAD_USER_INPUT"]
    assert codes_of(third) == ["BAD_USER_INPUT"]  # one malformed operation, not the batch


async def test_limits_keep_their_status_codes(calls: Calls) -> None:
    config = GraphQLConfig(max_body_bytes=100, timeout_s=0.05)
    async with serve_schema(config, calls=calls) as client:
        for accept in (JSON, GRAPHQL_RESPONSE):
            big = await client.post(
                "/graphql", json={"query": "{ hits }", "pad": "x" * 200}, headers={"accept": accept}
            )
            slow = await post(client, "{ hang }", accept=accept)
            assert (big.status_code, slow.status_code) == (413, 504)
            assert big.headers["content-type"] == slow.headers["content-type"] == accept


# --- CORS and Socket.IO origins: one allowlist ---------------------------------------------


def preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }


async def test_cors_on_graphql_allows_the_listed_origins_only(settings: Settings) -> None:
    listed = settings.model_copy(
        update={"cors_origins": ["https://app.example.com", "http://localhost:4000"]}
    )
    async with gateway_in_process(listed) as client:
        allowed = await client.options("/graphql", headers=preflight("https://app.example.com"))
        refused = await client.options("/graphql", headers=preflight("https://evil.example"))
        call = await client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"origin": "http://localhost:4000"},
        )
        foreign = await client.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": "https://evil.example"}
        )
        health = await client.get("/healthz", headers={"origin": "https://app.example.com"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert call.json() == {"data": {"__typename": "Query"}}
    assert call.headers["access-control-allow-origin"] == "http://localhost:4000"
    assert call.headers["access-control-allow-credentials"] == "true"
    assert foreign.json() == {"data": {"__typename": "Query"}}  # the browser is who refuses
    assert "access-control-allow-origin" not in foreign.headers
    assert "access-control-allow-origin" not in health.headers  # /graphql only


def test_the_allowlist_defaults_to_the_dev_web_apps_origins_and_none_in_prod() -> None:
    assert Settings(_env_file=None, web_port=3100).allowed_origins == [
        "http://localhost:3100",
        "http://127.0.0.1:3100",
        "http://localhost:3000",
        "http://127.0.0.1:3000",
    ]
    listed = ["https://a.example", "https://b.example"]
    assert Settings(_env_file=None, cors_origins=listed).allowed_origins == listed
    prod = Settings.model_construct(env="prod", web_port=3000, cors_origins=None)
    assert prod.allowed_origins == []


async def _socketio_connects(server: Server, token: str, origin: str | None) -> bool:
    client = socketio.AsyncClient(reconnection=False)
    try:
        await client.connect(
            server.url,
            auth={"token": token},
            headers={"Origin": origin} if origin else {},
            transports=["websocket"],
            wait_timeout=10,
        )
    except socketio.exceptions.ConnectionError:
        return False
    await client.disconnect()
    return True


async def test_socketio_accepts_the_listed_origins_and_clients_without_one(
    server: Server,
) -> None:
    token = (await register(server))["token"]
    assert await _socketio_connects(server, token, "http://localhost:3000")
    assert await _socketio_connects(server, token, None)  # not a browser
    assert not await _socketio_connects(server, token, "https://evil.example")
    async with server.client() as client:  # the polling handshake says why
        refused = await client.get(
            "/socket.io/",
            params={"EIO": "4", "transport": "polling"},
            headers={"origin": "https://evil.example"},
        )
    assert refused.status_code == 400
    assert "https://evil.example is not an accepted origin" in refused.text


# --- health: the broker is reported, never a reason to be unready ---------------------------


async def _health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any], str, float]:
    ready = await client.get("/readyz")
    health = await client.get("/healthz")
    metrics = await client.get("/metrics")
    [gauge] = [
        float(line.split()[-1])
        for line in metrics.text.splitlines()
        if line.startswith("haunted_broker_up ")
    ]
    assert health.status_code == 200
    return ready.status_code, ready.json(), health.json()["details"]["broker"], gauge


async def test_a_frozen_broker_leaves_readyz_200_and_shows_in_healthz_and_metrics(
    server: Server, kafka: EmbeddedBroker
) -> None:
    async with server.client() as client:
        assert await _health(client) == (200, {"status": "ok"}, "up", 1.0)
        assert kafka.pid is not None
        os.kill(kafka.pid, signal.SIGSTOP)
        try:
            assert await _health(client) == (200, {"status": "ok"}, "down", 0.0)
            # A request that needs no broker is still served.
            assert (await post(client, "{ __typename }")).json() == {
                "data": {"__typename": "Query"}
            }
        finally:
            os.kill(kafka.pid, signal.SIGCONT)

        async def broker_back() -> bool:
            return await _health(client) == (200, {"status": "ok"}, "up", 1.0)

        await eventually(broker_back, timeout_s=20)


async def test_readyz_names_what_a_request_needs_that_does_not_answer(settings: Settings) -> None:
    nothing_there = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with gateway_in_process(nothing_there) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "down": ["cache"]}


@pytest.mark.parametrize(
    "content",
    [
        {"data": {"__typename": "Query"}},
        {"data": {"me": {"id": "u-1", "name": "Zoë ✓", "n": 3, "x": 1.5, "ok": True}}},
        {"data": None, "errors": [{"message": "no", "path": ["a", 0], "extensions": {}}]},
        [{"data": {"a": [1, 2, None]}}, {"errors": [{"message": "b"}]}],
    ],
)
def test_answers_render_as_starlette_would_but_through_orjson(content: Any) -> None:
    """gateway/app.py renders GraphQL answers with orjson: the same bytes as Starlette's
    JSONResponse (compact, UTF-8), and its own rendering for what orjson refuses."""
    assert _json(content).body == JSONResponse(content).body
    huge = {"data": {"big": 2**70}}  # past 64 bits: orjson refuses it
    assert _json(huge).body == JSONResponse(huge).body == b'{"data":{"big":1180591620717411303424}}'


async def test_each_operation_is_timed_under_its_type_name_and_outcome() -> None:
    """haunted_graphql_operation_seconds, by (type, operation, outcome): the children are
    kept between requests (gateway/app.py), each request still counted in its own."""

    def count(outcome: str) -> float:
        labels = {"type": "query", "operation": "TimedTwice", "outcome": outcome}
        return REGISTRY.get_sample_value("haunted_graphql_operation_seconds_count", labels) or 0.0

    ok, errors = count("ok"), count("errors")
    async with serve_schema() as client:
        for query in (
            "query TimedTwice { __typename }",
            "query TimedTwice { __typename }",
            "query TimedTwice { __typename nope }",
        ):
            await client.post("/graphql", json={"query": query})
    assert (count("ok") - ok, count("errors") - errors) == (2, 0)
