"""Automatic persisted queries (Apollo's protocol), shared through Redis; the allow-list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from gateway.app import GraphQLConfig
from gateway.persisted import KEY_PREFIX, load_allowlist, sha256_hex
from haunted.settings import Settings
from tests.conftest import Server
from tests.gateway.conftest import Calls, codes_of, errors_of, gateway_in_process, serve_schema

HITS = "query Hits { hits }"


def persisted(sha: str, version: Any = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha}}


async def send(
    client: httpx.AsyncClient, query: str | None, sha: str, **extra: Any
) -> httpx.Response:
    body: dict[str, Any] = {"extensions": persisted(sha), **extra}
    if query is not None:
        body["query"] = query
    return await client.post("/graphql", json=body)


def not_found(response: httpx.Response) -> bool:
    errors = errors_of(response.json())
    return (
        response.status_code == 200
        and len(errors) == 1
        and errors[0]["message"] == "PersistedQueryNotFound"
        and errors[0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    )


async def test_the_apollo_protocol_on_the_gateway(server: Server) -> None:
    query = "query Typename { __typename }"
    sha = sha256_hex(query)
    redis = server.haunted.redis
    async with server.client() as client:
        assert not_found(await send(client, None, sha))
        registered = await send(client, query, sha)
        assert registered.json() == {"data": {"__typename": "Query"}}
        assert await redis.get(KEY_PREFIX + sha) == query.encode()
        by_hash = await send(client, None, sha)
        assert by_hash.json() == {"data": {"__typename": "Query"}}
        by_get = await client.get("/graphql", params={"extensions": json.dumps(persisted(sha))})
        assert by_get.json() == {"data": {"__typename": "Query"}}
    assert (
        0
        < await redis.ttl(KEY_PREFIX + sha)
        <= server.haunted.settings.graphql.persisted_query_ttl_s
    )


async def test_gateways_share_registered_queries_through_redis(
    redis_pair: tuple[Redis, Redis], calls: Calls
) -> None:
    first, second = redis_pair
    sha = sha256_hex(HITS)
    async with (
        serve_schema(redis=first, calls=calls) as one,
        serve_schema(redis=second, calls=calls) as other,
    ):
        assert not_found(await send(other, None, sha))
        assert (await send(one, HITS, sha)).json() == {"data": {"hits": 1}}
        assert (await send(other, None, sha)).json() == {"data": {"hits": 2}}


async def test_a_hash_that_does_not_match_its_query_is_refused(
    redis_pair: tuple[Redis, Redis], calls: Calls
) -> None:
    redis, _ = redis_pair
    wrong = sha256_hex("{ tags }")
    async with serve_schema(redis=redis, calls=calls) as client:
        response = await send(client, HITS, wrong)
        assert codes_of(response.json()) == ["BAD_USER_INPUT"]
        assert "does not match" in response.text
        assert not_found(await send(client, None, wrong))
    assert await redis.get(KEY_PREFIX + wrong) is None
    assert calls.count == 0


async def test_invalid_or_refused_documents_are_not_registered(
    redis_pair: tuple[Redis, Redis], calls: Calls
) -> None:
    redis, _ = redis_pair
    invalid, deep = "{ nope }", "{ node { child { child { child { id } } } } }"
    async with serve_schema(GraphQLConfig(max_depth=3), redis=redis, calls=calls) as client:
        for query in (invalid, deep):
            response = await send(client, query, sha256_hex(query))
            assert codes_of(response.json()) == ["BAD_USER_INPUT"]
            assert not_found(await send(client, None, sha256_hex(query)))
            assert await redis.get(KEY_PREFIX + sha256_hex(query)) is None
    assert calls.count == 0


@pytest.mark.parametrize(
    ("extensions", "message"),
    [
        ({"persistedQuery": {"version": 2, "sha256Hash": "0" * 64}}, "version must be 1"),
        ({"persistedQuery": {"version": True, "sha256Hash": "0" * 64}}, "version must be 1"),
        ({"persistedQuery": {"version": 1, "sha256Hash": "not-a-hash"}}, "hex sha256"),
        ({"persistedQuery": "yes"}, "must be an object"),
        ("yes", "extensions must be an object"),
    ],
)
async def test_malformed_persisted_queries_are_bad_input(
    extensions: Any, message: str, calls: Calls
) -> None:
    async with serve_schema(calls=calls) as client:
        response = await client.post("/graphql", json={"extensions": extensions})
    assert codes_of(response.json()) == ["BAD_USER_INPUT"]
    assert message in response.json()["errors"][0]["message"]
    assert calls.count == 0


async def test_persisted_queries_can_be_turned_off(calls: Calls) -> None:
    async with serve_schema(GraphQLConfig(persisted_queries=False), calls=calls) as client:
        response = await send(client, HITS, sha256_hex(HITS))
        plain = await client.post("/graphql", json={"query": HITS})
    assert codes_of(response.json()) == ["PERSISTED_QUERY_NOT_SUPPORTED"]
    assert plain.json() == {"data": {"hits": 1}}


async def test_get_runs_queries_but_never_mutations(calls: Calls) -> None:
    async with serve_schema(calls=calls) as client:
        query = await client.get("/graphql", params={"query": "{ hits }"})
        mutation = await client.get("/graphql", params={"query": "mutation { bump }"})
        bad_variables = await client.get("/graphql", params={"query": "{ hits }", "variables": "{"})
    assert query.json() == {"data": {"hits": 1}}
    assert codes_of(mutation.json()) == ["BAD_USER_INPUT"]
    assert codes_of(bad_variables.json()) == ["BAD_USER_INPUT"]
    assert calls.fields == ["hits"]


# --- the allow-list ---------------------------------------------------------------------


def write_operations(path: Path, *queries: str) -> Path:
    path.write_text(json.dumps({sha256_hex(query): query for query in queries}))
    return path


def test_an_allowlist_file_is_checked_when_loaded(tmp_path: Path) -> None:
    listed = load_allowlist(write_operations(tmp_path / "ops.json", HITS))
    assert listed == {sha256_hex(HITS): HITS}
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [
                    {"id": sha256_hex(HITS), "name": "Hits", "type": "query", "body": HITS}
                ],
            }
        )
    )
    assert load_allowlist(manifest) == listed
    lying = tmp_path / "lying.json"
    lying.write_text(json.dumps({sha256_hex("{ tags }"): HITS}))
    with pytest.raises(ValueError, match="does not hash"):
        load_allowlist(lying)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ValueError, match=r"broken\.json"):
        load_allowlist(broken)
    with pytest.raises(ValueError, match=r"missing\.json"):
        load_allowlist(tmp_path / "missing.json")


async def test_the_allowlist_runs_only_its_documents(tmp_path: Path, calls: Calls) -> None:
    allowlist = load_allowlist(write_operations(tmp_path / "ops.json", HITS))
    redis_less = GraphQLConfig(allowlist=allowlist)
    other = "{ tags }"
    async with serve_schema(redis_less, calls=calls) as client:
        by_text = await client.post("/graphql", json={"query": HITS})
        by_hash = await send(client, None, sha256_hex(HITS))
        refused_text = await client.post("/graphql", json={"query": other})
        refused_registration = await send(client, other, sha256_hex(other))
        refused_hash = await send(client, None, sha256_hex(other))
    assert by_text.json() == {"data": {"hits": 1}}
    assert by_hash.json() == {"data": {"hits": 2}}
    for refused in (refused_text, refused_registration, refused_hash):
        assert codes_of(refused.json()) == ["FORBIDDEN"]
        assert "allow-list" in refused.json()["errors"][0]["message"]
    assert calls.fields == ["hits", "hits"]


async def test_the_allowlist_setting_reaches_the_gateway(
    settings: Settings, tmp_path: Path
) -> None:
    listed = "query Typename { __typename }"
    path = write_operations(tmp_path / "operations.json", listed)
    async with gateway_in_process(
        settings.model_copy(update={"graphql_allowlist_file": path})
    ) as client:
        allowed = await client.post("/graphql", json={"query": listed})
        refused = await client.post("/graphql", json={"query": "{ __typename }"})
    assert allowed.json() == {"data": {"__typename": "Query"}}
    assert codes_of(refused.json()) == ["FORBIDDEN"]
