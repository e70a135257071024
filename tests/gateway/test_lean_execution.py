"""The gateway's lean execution path (gateway/app.py, `_execute_lean`) is a shim of
Ariadne's `graphql()`: for every document here it answers exactly what `ariadne.graphql`
answers with the same options (data, errors with their messages, locations, paths and
extensions). An Ariadne upgrade that changes `graphql()` fails here first."""

from __future__ import annotations

from typing import Any

import pytest
from ariadne import MutationType, QueryType, make_executable_schema
from ariadne.graphql import graphql
from graphql import GraphQLError

from gateway.app import GraphQLConfig, graphql_app

TYPE_DEFS = """
type Query { hello(name: String!): String! fails: String broken: Int! }
type Mutation { poke: Boolean! }
type Subscription { ticks: Int! }
"""

DOCUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("a plain query", {"query": '{ hello(name: "x") }'}),
    ("variables", {"query": "query($n: String!) { hello(name: $n) }", "variables": {"n": "y"}}),
    ("a variable that does not coerce", {"query": "query($n: String!) { hello(name: $n) }"}),
    ("a syntax error", {"query": "{ hello("}),
    ("an unknown field, with a suggestion", {"query": "{ helo }"}),
    ("a resolver error", {"query": "{ fails }"}),
    ("a non-null field resolving to null", {"query": "{ broken }"}),
    ("two operations, none named", {"query": "query A { __typename } query B { __typename }"}),
    ("the named one of two", {"query": "query A { __typename } query B { __typename }",
                             "operationName": "B"}),
    ("an unknown operation name", {"query": "{ __typename }", "operationName": "Nope"}),
    ("a mutation", {"query": "mutation { poke }"}),
    ("a subscription over HTTP", {"query": "subscription { ticks }"}),
    ("introspection", {"query": "{ __schema { queryType { name } } }"}),
    ("not a string", {"query": 42}),
]  # fmt: skip


def build_schema() -> Any:
    query, mutation = QueryType(), MutationType()

    @query.field("hello")
    def hello(_: None, __: Any, name: str) -> str:
        return f"hello {name}"

    @query.field("fails")
    def fails(*_: Any) -> str:
        raise GraphQLError("it failed", extensions={"code": "CONFLICT"})

    @query.field("broken")
    def broken(*_: Any) -> None:
        return None

    @mutation.field("poke")
    def poke(*_: Any) -> bool:
        return True

    return make_executable_schema(TYPE_DEFS, query, mutation)


@pytest.mark.parametrize("introspection", [True, False])
@pytest.mark.parametrize("suggestions", [True, False])
@pytest.mark.parametrize("require_query", [False, True])
@pytest.mark.parametrize(("name", "data"), DOCUMENTS, ids=[name for name, _ in DOCUMENTS])
async def test_the_lean_path_answers_as_ariadne_graphql_does(
    name: str, data: dict[str, Any], require_query: bool, suggestions: bool, introspection: bool
) -> None:
    config = GraphQLConfig(introspection=introspection, suggestions=suggestions)
    app = graphql_app(build_schema(), config)
    handler = app.http_handler
    context: dict[str, Any] = {"request": None, "principal": None}
    lean = await handler._execute(  # type: ignore[attr-defined]
        None,
        data,
        context,
        handler.before_execution,
        require_query,  # type: ignore[attr-defined]
    )
    reference = await graphql(
        handler.schema,
        data,
        context_value=context,
        root_value=handler.before_execution,  # type: ignore[attr-defined]
        query_parser=handler.query_parser,
        query_validator=handler.query_validator,
        validation_rules=handler.validation_rules,
        require_query=require_query,
        debug=handler.debug,
        introspection=handler.introspection,
        logger=handler.logger,
        error_formatter=handler.error_formatter,
        hide_suggestions=not suggestions,
    )
    assert without_request_ids(lean) == without_request_ids(reference), name


def without_request_ids(result: Any) -> Any:
    """An unexpected error gets a fresh request id each time it is formatted."""
    success, body = result
    for error in body.get("errors") or ():
        if "requestId" in error.get("extensions", {}):
            error["extensions"]["requestId"] = "<id>"
    return success, body
