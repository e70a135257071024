"""Gateway fixtures: a small schema whose resolvers count their calls, served in process.

`serve_schema` mounts `gateway.app.graphql_app` (the gateway's GraphQL pipeline:
cache, limits, persisted queries, errors) over that schema in a Starlette app
and returns an httpx client that speaks ASGI to it: a refused document is
proved refused before any resolver by the call counter staying at zero.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fakeredis
import httpx
import pytest
from ariadne import MutationType, ObjectType, QueryType, make_executable_schema
from graphql import GraphQLResolveInfo, GraphQLSchema
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import Route

from gateway.app import GraphQLConfig, graphql_app
from haunted.runtime import Haunted
from haunted.settings import Settings
from services.errors import Forbidden, Unauthenticated
from tests.conftest import Server, serve
from tests.gateway.realtime import shared_settings

SDL = """
type Query {
  hits: Int!
  items(first: Int = 10): [Item!]!
  tags: [String!]!
  node: Node
  boom: String
  forbidden: String
  guarded: String!
  hang: String
}
type Mutation { bump: Int! }
type Item { id: ID! name: String! children(first: Int): [Item!]! }
type Node { id: ID! child: Node }
"""

# What an unexpected failure may carry that a client must never see.
SECRET_SQL = "SELECT password_hash FROM users WHERE email = 'victim@example.com'"


@dataclass
class Calls:
    """Every resolver of the test schema appends its field name here."""

    fields: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.fields)


def counting_schema(calls: Calls) -> GraphQLSchema:
    query, mutation, item, node = (
        QueryType(),
        MutationType(),
        ObjectType("Item"),
        ObjectType("Node"),
    )

    def counted(name: str, result: Callable[..., Any]) -> Callable[..., Any]:
        def resolve(obj: Any, info: GraphQLResolveInfo, **args: Any) -> Any:
            calls.fields.append(name)
            return result(obj, **args)

        return resolve

    query.set_field("hits", counted("hits", lambda _: len(calls.fields)))
    query.set_field(
        "items",
        counted(
            "items", lambda _, first=10: [{"id": str(i), "name": f"item {i}"} for i in range(first)]
        ),
    )
    query.set_field("tags", counted("tags", lambda _: ["a", "b"]))
    query.set_field("node", counted("node", lambda _: {"id": "n0", "depth": 0}))
    node.set_field(
        "child",
        counted("child", lambda obj: {"id": f"n{obj['depth'] + 1}", "depth": obj["depth"] + 1}),
    )
    item.set_field(
        "children",
        counted(
            "children",
            lambda obj, first=2: [{"id": f"{obj['id']}.{i}", "name": "c"} for i in range(first)],
        ),
    )

    def boom(_: Any, info: GraphQLResolveInfo) -> None:
        calls.fields.append("boom")
        raise RuntimeError(SECRET_SQL)

    def forbidden(_: Any, info: GraphQLResolveInfo) -> None:
        calls.fields.append("forbidden")
        raise Forbidden("billing:manage is required")

    def guarded(_: Any, info: GraphQLResolveInfo) -> None:  # non-null: `data` becomes null
        calls.fields.append("guarded")
        raise Unauthenticated("sign in first")

    async def hang(_: Any, info: GraphQLResolveInfo) -> None:
        calls.fields.append("hang")
        await asyncio.Event().wait()

    query.set_field("boom", boom)
    query.set_field("forbidden", forbidden)
    query.set_field("guarded", guarded)
    query.set_field("hang", hang)
    mutation.set_field("bump", counted("bump", lambda _: len(calls.fields)))
    return make_executable_schema(SDL, query, mutation, item, node)


@asynccontextmanager
async def serve_schema(
    config: GraphQLConfig | None = None,
    *,
    calls: Calls | None = None,
    redis: Redis | None = None,
    context_value: Any = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the gateway's GraphQL app over the counting schema."""
    server = graphql_app(
        counting_schema(calls if calls is not None else Calls()),
        config,
        redis=redis,
        context_value=context_value,
    )
    app = Starlette(
        routes=[Route("/graphql", server.handle_request, methods=["GET", "POST", "OPTIONS"])]
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield client


@asynccontextmanager
async def gateway_in_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The whole gateway app over ASGI, not started: enough for what is refused up front."""
    haunted = Haunted.build(settings)
    transport = httpx.ASGITransport(app=haunted.asgi_app())
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client
    finally:
        await haunted.redis.aclose()
        await haunted.db.dispose()


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def redis_pair(redis_url: str) -> AsyncIterator[tuple[Redis, Redis]]:
    """Two clients of one Redis, as two gateway processes have: real, or one fake server."""
    if redis_url == "memory://":
        server = fakeredis.FakeServer()
        first: Redis = fakeredis.FakeAsyncRedis(server=server)
        second: Redis = fakeredis.FakeAsyncRedis(server=server)
    else:
        first, second = Redis.from_url(redis_url), Redis.from_url(redis_url)
    yield first, second
    await first.aclose()
    await second.aclose()


CONTRACT_CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "QUOTA_EXCEEDED",
    "RATE_LIMITED",
    "CONFLICT",
    "INTERNAL",
    # The project's own, beside the contract's (docs/security.md): a login that proved
    # its password and must still prove a second factor.
    "SECOND_FACTOR_REQUIRED",
}
LEAKS = ("Traceback", 'File "', "SELECT", "password_hash")
# A Python exception's class name: RuntimeError, KeyError, GraphQLError, DomainError...
CLASS_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception)\b")


def assert_no_leak(response: httpx.Response, sent: Iterable[str] = ()) -> None:
    """No stack trace, SQL or exception class name in the answer. `sent` are the strings
    the request carried: graphql-core quotes a refused value back ('got invalid value
    "AError"'), which is the client's own text, not a leak."""
    text = response.text
    for value in sorted(sent, key=len, reverse=True):
        if value:
            text = text.replace(json.dumps(value)[1:-1], "")
    for leak in LEAKS:
        assert leak not in text, (leak, response.text)
    assert CLASS_NAME.search(text) is None, response.text


def errors_of(body: Any) -> list[dict[str, Any]]:
    assert isinstance(body, dict), body
    errors: list[dict[str, Any]] = body.get("errors") or []
    return errors


def codes_of(body: Any) -> list[str]:
    return [error["extensions"]["code"] for error in errors_of(body)]


@pytest.fixture(scope="module")
async def shared_server(
    backend: str,
    migrated_template: str,
    signing_key_files: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Server]:
    """One server for a module's tests, each with users of its own (a server per test
    costs more than most tests). A module takes it as its `server`."""
    directory = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    async with (
        shared_settings(backend, migrated_template, signing_key_files, directory) as settings,
        serve(settings) as running,
    ):
        yield running
