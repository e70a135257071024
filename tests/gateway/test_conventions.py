"""gateway/conventions.py: a declared service's root field with no resolver calls the
facade method of its name, with the caller and its arguments; one with neither stops
the schema from being built, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from ariadne import QueryType, graphql, make_executable_schema

from gateway.conventions import FacadeFields, UnboundField, declared_fields
from services.principal import Principal, requires

SCHEMA = """
type Query { reportsSummary(teamId: ID, pageSize: Int = 10): ReportsSummary! }
type Mutation { addReportsItem(title: String!, teamId: ID): ID! }
type ReportsSummary { teamId: ID!, items: Int! }
"""
DECLARED = {"reports": [("Query", "reportsSummary"), ("Mutation", "addReportsItem")]}
OWNER = Principal(user_id="u1", session_id="s1", teams={"t1": "owner"})
OUTSIDER = Principal(user_id="u2", session_id="s2", teams={"t2": "viewer"})


class Reports:
    """A facade of the shape the scaffold writes: guarded methods named as the fields."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @requires("team:read")
    async def reports_summary(
        self, principal: Principal, *, team_id: str | None = None, page_size: int = 0
    ) -> dict[str, Any]:
        self.calls.append((principal.user_id, {"team_id": team_id, "page_size": page_size}))
        return {"team_id": team_id, "items": page_size}

    @requires("team:manage")
    async def add_reports_item(
        self, principal: Principal, title: str, *, team_id: str | None = None
    ) -> str:
        return f"{team_id}:{title}"


def schema(facade: object, *bindables: Any, schema: str = SCHEMA) -> Any:
    conventions = FacadeFields({"reports": facade}, ("reports",), lambda m: DECLARED.get(m, []))
    return make_executable_schema(schema, *bindables, conventions, convert_names_case=True)


async def run(built: Any, query: str, principal: Principal | None) -> dict[str, Any]:
    context: dict[str, Any] = {"principal": principal} if principal else {}
    _, result = await graphql(built, {"query": query}, context_value=context)
    return result


async def test_a_field_without_a_resolver_calls_its_facade_method_with_caller_and_arguments() -> (
    None
):
    reports = Reports()
    result = await run(
        schema(reports), '{ reportsSummary(teamId: "t1", pageSize: 3) { teamId items } }', OWNER
    )
    assert result == {"data": {"reportsSummary": {"teamId": "t1", "items": 3}}}
    # The GraphQL default applies; no teamId: @requires picks the caller's default team.
    result = await run(schema(reports), "{ reportsSummary { teamId items } }", OWNER)
    assert result["data"] == {"reportsSummary": {"teamId": "t1", "items": 10}}
    assert reports.calls == [
        ("u1", {"team_id": "t1", "page_size": 3}),
        ("u1", {"team_id": "t1", "page_size": 10}),
    ]
    added = await run(schema(reports), 'mutation { addReportsItem(title: "x") }', OWNER)
    assert added == {"data": {"addReportsItem": "t1:x"}}


async def test_the_facade_checks_the_permission_and_the_caller_is_required() -> None:
    reports = Reports()
    refused = await run(schema(reports), '{ reportsSummary(teamId: "t1") { items } }', OUTSIDER)
    assert refused["errors"][0]["message"] and refused["data"] is None
    anonymous = await run(schema(reports), "{ reportsSummary { items } }", None)
    assert "authentication required" in anonymous["errors"][0]["message"]
    assert reports.calls == []  # nothing ran past the guard


async def test_an_explicit_resolver_wins() -> None:
    query = QueryType()

    @query.field("reportsSummary")
    def resolve(*_: Any, **__: Any) -> dict[str, Any]:
        return {"team_id": "explicit", "items": 0}

    reports = Reports()
    result = await run(schema(reports, query), "{ reportsSummary { teamId } }", OWNER)
    assert result["data"] == {"reportsSummary": {"teamId": "explicit"}}
    assert reports.calls == []


def test_a_field_with_neither_a_resolver_nor_a_method_stops_the_build() -> None:
    DECLARED["reports"].append(("Query", "reportsTotal"))
    try:
        with pytest.raises(UnboundField) as refused:
            schema(Reports(), schema=SCHEMA + "extend type Query { reportsTotal: Int }")
    finally:
        DECLARED["reports"].remove(("Query", "reportsTotal"))
    assert str(refused.value) == (
        "Query.reportsTotal (gateway/schema/reports.graphql) has no resolver, and the "
        "'reports' facade has no method reports_total(caller, ...): write one of the two"
    )


def test_a_field_no_service_declares_stops_the_build() -> None:
    with pytest.raises(
        UnboundField, match=r"Query.ping has no resolver and no service declares it"
    ):
        schema(Reports(), schema=SCHEMA + "extend type Query { ping: String }")


def test_a_method_that_does_not_take_the_arguments_stops_the_build() -> None:
    class Narrow:
        async def reports_summary(self, principal: Principal) -> None: ...

        async def add_reports_item(self, principal: Principal, title: str) -> str:
            return title

    with pytest.raises(UnboundField) as refused:
        schema(Narrow())
    message = str(refused.value)
    assert (
        "Query.reportsSummary (gateway/schema/reports.graphql): the 'reports' facade's " in message
    )
    assert "reports_summary does not take the caller and the field's arguments" in message
    assert "Mutation.addReportsItem" in message  # every problem at once, one line each


def test_a_service_s_fields_are_read_from_its_schema_file() -> None:
    assert declared_fields("audit") == [("Query", "auditLog")]
    assert ("Subscription", "promptStream") not in declared_fields("llm")  # roots: Query, Mutation
    assert declared_fields("no_such_service") == []
