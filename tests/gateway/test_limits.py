"""Limits: each refused with BAD_USER_INPUT naming it, before any resolver runs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from ariadne import make_executable_schema
from graphql import get_introspection_query, parse

from gateway.app import GraphQLConfig
from gateway.graphql import type_defs
from gateway.limits import LimitExceeded, QueryLimits, analyze, select_operation
from haunted.settings import Settings
from tests.conftest import Server, register
from tests.gateway.conftest import (
    Calls,
    codes_of,
    counting_schema,
    errors_of,
    gateway_in_process,
    serve_schema,
)

SMALL = GraphQLConfig(max_depth=4, max_aliases=3, max_cost=100, default_list_size=10, max_batch=3)


def _chain(levels: int) -> str:
    """child { child { ... { id } } } with `levels` fields."""
    text = "id"
    for _ in range(levels - 1):
        text = f"child {{ {text} }}"
    return text


def refusal(body: dict[str, object], limit: str) -> dict[str, object]:
    errors = errors_of(body)
    assert len(errors) == 1, body
    extensions = errors[0]["extensions"]
    assert extensions["code"] == "BAD_USER_INPUT", body
    assert extensions["limit"] == limit, body
    assert limit in str(errors[0]["message"]), body
    assert "data" not in body or body["data"] is None
    return errors[0]


# --- the analysis ------------------------------------------------------------------------


def test_analysis_counts_depth_aliases_and_cost() -> None:
    schema = counting_schema(Calls())
    document = parse(
        """
        query($n: Int) {
          first: items(first: 3) { id children(first: 2) { id } }
          again: items(first: $n) { ...Named }
          hits
        }
        fragment Named on Item { name children { id } }
        """
    )
    operation = select_operation(document, None)
    assert operation is not None
    analysis = analyze(schema, document, operation, default_list_size=10)
    assert analysis.depth == 3
    assert analysis.aliases == 2
    # first: 1 + 3 * (id 1 + children (1 + 2 * 1)) = 13
    # again: 1 + n * (name 1 + children (1 + 10 * 1)) = 1 + 12n (children: default list size)
    # hits: 1
    assert analysis.cost({"n": 5}) == 13 + 61 + 1
    assert analysis.cost({}) == 13 + 1 + 12 * 10 + 1  # $n absent: the argument's default, 10
    assert analysis.cost({"n": None}) == 13 + 121 + 1


def test_a_variable_default_in_the_operation_counts() -> None:
    schema = counting_schema(Calls())
    document = parse("query($n: Int = 4) { items(first: $n) { id } }")
    operation = select_operation(document, None)
    assert operation is not None
    assert analyze(schema, document, operation).cost(None) == 1 + 4


def test_the_schema_default_of_first_counts_when_not_given() -> None:
    schema = counting_schema(Calls())
    document = parse("{ items { id } }")
    operation = select_operation(document, None)
    assert operation is not None
    assert analyze(schema, document, operation, default_list_size=50).cost(None) == 1 + 10


def test_the_introspection_query_fits_the_default_limits() -> None:
    """GraphiQL and codegen tools must keep working where introspection is on."""
    limits = QueryLimits(make_executable_schema(type_defs()))
    limits.check(parse(get_introspection_query(descriptions=True)), None, None)


def test_a_fragment_chain_is_as_deep_as_its_fields() -> None:
    schema = counting_schema(Calls())
    document = parse(
        """
        { node { ...A } }
        fragment A on Node { child { ...B } }
        fragment B on Node { child { ...C } }
        fragment C on Node { child { id } }
        """
    )
    operation = select_operation(document, None)
    assert operation is not None
    assert analyze(schema, document, operation).depth == 5


def test_limits_refuse_by_raising_a_named_error() -> None:
    limits = QueryLimits(counting_schema(Calls()), max_depth=2)
    with pytest.raises(LimitExceeded) as raised:
        limits.check(parse("{ node { child { id } } }"), None, None)
    assert raised.value.extensions == {"code": "BAD_USER_INPUT", "limit": "depth", "max": 2}


# --- over HTTP: refused before any resolver --------------------------------------------


@pytest.fixture
async def small(calls: Calls) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_schema(SMALL, calls=calls) as client:
        yield client


async def post(client: httpx.AsyncClient, query: str, **extra: object) -> httpx.Response:
    return await client.post("/graphql", json={"query": query, **extra})


async def test_depth_over_the_limit_is_refused_before_any_resolver(
    small: httpx.AsyncClient, calls: Calls
) -> None:
    allowed = await post(small, "{ node { " + _chain(3) + " } }")  # depth 4
    assert allowed.status_code == 200, allowed.text
    assert calls.count == 3  # node, child, child: the counter does count
    calls.fields.clear()
    response = await post(small, "{ node { " + _chain(4) + " } }")  # depth 5
    assert response.status_code == 200  # application/json: 200 for a well-formed request
    error = refusal(response.json(), "depth")
    assert error["extensions"]["max"] == 4  # type: ignore[index]
    strict = await small.post(
        "/graphql",
        json={"query": "{ node { " + _chain(4) + " } }"},
        headers={"accept": "application/graphql-response+json"},
    )
    assert strict.status_code == 400  # a request error: no execution, no `data`
    assert "data" not in strict.json()
    refusal(strict.json(), "depth")
    assert calls.count == 0


async def test_depth_through_fragments_is_refused(small: httpx.AsyncClient, calls: Calls) -> None:
    query = """
    { node { ...A } }
    fragment A on Node { child { ...B } }
    fragment B on Node { child { child { child { id } } } }
    """
    refusal((await post(small, query)).json(), "depth")
    assert calls.count == 0


async def test_aliases_over_the_limit_are_refused(small: httpx.AsyncClient, calls: Calls) -> None:
    assert "errors" not in (await post(small, "{ a: hits b: hits c: hits }")).json()
    calls.fields.clear()
    error = refusal((await post(small, "{ a: hits b: hits c: hits d: hits }")).json(), "aliases")
    assert error["extensions"]["actual"] == 4  # type: ignore[index]
    assert calls.count == 0


async def test_cost_over_the_limit_is_refused(small: httpx.AsyncClient, calls: Calls) -> None:
    assert "errors" not in (await post(small, "{ items(first: 30) { id name } }")).json()  # 61
    calls.fields.clear()
    error = refusal((await post(small, "{ items(first: 50) { id name } }")).json(), "cost")
    assert error["extensions"]["actual"] == 101  # type: ignore[index]
    assert error["extensions"]["max"] == 100  # type: ignore[index]
    assert calls.count == 0


async def test_nested_lists_multiply(small: httpx.AsyncClient, calls: Calls) -> None:
    query = "{ items(first: 5) { children(first: 5) { children(first: 5) { id } } } }"
    refusal((await post(small, query)).json(), "cost")
    assert calls.count == 0


async def test_cost_from_variables_is_evaluated_per_request(
    small: httpx.AsyncClient, calls: Calls
) -> None:
    query = "query($n: Int) { items(first: $n) { id } }"
    ok = await post(small, query, variables={"n": 20})
    assert len(ok.json()["data"]["items"]) == 20
    calls.fields.clear()
    refusal((await post(small, query, variables={"n": 200})).json(), "cost")
    assert calls.count == 0


async def test_a_batch_runs_each_operation(small: httpx.AsyncClient, calls: Calls) -> None:
    response = await small.post(
        "/graphql",
        json=[{"query": "{ hits }"}, {"query": "mutation { bump }"}, {"query": "{ nope }"}],
    )
    assert response.status_code == 200
    first, second, third = response.json()
    assert first == {"data": {"hits": 1}}
    assert second == {"data": {"bump": 2}}
    assert codes_of(third) == ["BAD_USER_INPUT"]
    assert calls.fields == ["hits", "bump"]


async def test_a_batch_over_the_limit_is_refused_whole(
    small: httpx.AsyncClient, calls: Calls
) -> None:
    response = await small.post("/graphql", json=[{"query": "{ hits }"}] * 4)
    assert response.status_code == 400
    error = refusal(response.json(), "batch")
    assert error["extensions"]["actual"] == 4  # type: ignore[index]
    assert calls.count == 0


async def test_an_empty_batch_is_refused(small: httpx.AsyncClient) -> None:
    response = await small.post("/graphql", json=[])
    assert response.status_code == 400
    assert codes_of(response.json()) == ["BAD_USER_INPUT"]


async def test_an_oversized_body_is_refused_declared_or_streamed(calls: Calls) -> None:
    config = GraphQLConfig(max_body_bytes=2048)
    big = json.dumps({"query": "{ hits }", "variables": {"pad": "x" * 4096}}).encode()
    async with serve_schema(config, calls=calls) as client:
        declared = await client.post(
            "/graphql", content=big, headers={"content-type": "application/json"}
        )

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: chunked
            for start in range(0, len(big), 512):
                yield big[start : start + 512]

        streamed = await client.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
        small_body = await client.post("/graphql", json={"query": "{ hits }"})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert codes_of(response.json()) == ["BAD_USER_INPUT"]
        assert "2048 bytes" in response.json()["errors"][0]["message"]
    assert small_body.json() == {"data": {"hits": 1}}
    assert calls.fields == ["hits"]


async def test_too_many_tokens_is_a_syntax_error(calls: Calls) -> None:
    async with serve_schema(GraphQLConfig(max_tokens=100), calls=calls) as client:
        response = await post(client, "{ " + " ".join(["hits"] * 200) + " }")
    assert response.status_code == 200
    assert codes_of(response.json()) == ["BAD_USER_INPUT"]
    assert "tokens" in response.json()["errors"][0]["message"]
    assert calls.count == 0


async def test_a_slow_operation_times_out_and_the_server_goes_on(calls: Calls) -> None:
    async with serve_schema(GraphQLConfig(timeout_s=0.05), calls=calls) as client:
        response = await post(client, "{ hang }")
        after = await post(client, "{ hits }")
    assert response.status_code == 504
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL", "limit": "timeout", "max": 0.05}
    assert after.json() == {"data": {"hits": 2}}


async def test_introspection_and_suggestions_can_be_turned_off(calls: Calls) -> None:
    config = GraphQLConfig(introspection=False, suggestions=False)
    async with serve_schema(config, calls=calls) as client:
        introspection = await post(client, "{ __schema { types { name } } }")
        typename = await post(client, "{ __typename }")
        typo = await post(client, "{ hitz }")
        explorer = await client.get("/graphql", headers={"accept": "text/html"})
    assert codes_of(introspection.json()) == ["BAD_USER_INPUT"]
    assert "introspection is disabled" in introspection.json()["errors"][0]["message"]
    assert typename.json() == {"data": {"__typename": "Query"}}
    assert "Did you mean" not in typo.text
    assert explorer.status_code == 404 and "GraphiQL" not in explorer.text
    assert calls.count == 0
    async with serve_schema(GraphQLConfig(explorer=True), calls=calls) as client:
        assert "Did you mean 'hits'?" in (await post(client, "{ hitz }")).text
        assert "__schema" in (await post(client, "{ __schema { queryType { name } } }")).text
        explorer = await client.get("/graphql", headers={"accept": "text/html"})
        assert explorer.status_code == 200 and "text/html" in explorer.headers["content-type"]
        assert "GraphiQL" in explorer.text


# --- the running gateway ------------------------------------------------------------------


async def test_the_gateway_refuses_abusive_documents_by_default(server: Server) -> None:
    async with server.client() as client:
        deep = '{ __type(name: "User") { ' + "ofType { " * 15 + "name" + " }" * 17
        huge = "{ notifications(first: 100000) { id title } }"
        aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"
        for query, limit in ((deep, "depth"), (huge, "cost"), (aliases, "aliases")):
            response = await client.post("/graphql", json={"query": query})
            assert response.status_code == 200
            refusal(response.json(), limit)
        batch = await client.post("/graphql", json=[{"query": "{ __typename }"}] * 11)
        refusal(batch.json(), "batch")
        fine = await client.post("/graphql", json=[{"query": "{ __typename }"}] * 10)
        assert fine.json() == [{"data": {"__typename": "Query"}}] * 10


async def test_prod_turns_introspection_and_suggestions_off(settings: Settings) -> None:
    # model_copy skips the prod checks of real servers: nothing here is started.
    async with gateway_in_process(settings.model_copy(update={"env": "prod"})) as client:
        introspection = await client.post(
            "/graphql", json={"query": "{ __schema { types { name } } }"}
        )
        typo = await client.post("/graphql", json={"query": "{ mee { id } }"})
        explorer = await client.get("/graphql", headers={"accept": "text/html"})
    assert "introspection is disabled" in introspection.text
    assert codes_of(typo.json()) == ["BAD_USER_INPUT"]
    assert "Did you mean" not in typo.text
    assert explorer.status_code == 404  # the explorer is dev only
    assert "text/plain" in explorer.headers["content-type"] and "GraphiQL" not in explorer.text


async def test_settings_reach_the_gateway(settings: Settings) -> None:
    tuned = settings.model_copy(
        update={"env": "prod", "graphql_introspection": True, "graphql_max_depth": 3}
    )
    async with gateway_in_process(tuned) as client:
        introspection = await client.post(
            "/graphql", json={"query": "{ __schema { queryType { name } } }"}
        )
        deep = await client.post(
            "/graphql", json={"query": "{ me { memberships { team { id } } } }"}
        )
    assert introspection.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    refusal(deep.json(), "depth")


async def test_subscriptions_over_websocket_obey_the_limits(server: Server) -> None:
    registered = await register(server)
    url = server.url.replace("http", "ws") + "/graphql"
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        init = {"authorization": f"Bearer {registered['token']}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        fields = " ".join(f"a{i}: id" for i in range(31))
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": f"subscription {{ events {{ {fields} }} }}"},
                }
            )
        )
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert message["type"] == "error" and message["id"] == "1", message
    [error] = message["payload"]
    assert error["extensions"]["limit"] == "aliases"
    assert server.haunted.hub.listener_count == 0
