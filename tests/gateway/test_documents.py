"""The document cache: parse and validate once per distinct document, within its bounds."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    ValidationRule,
    build_schema,
    specified_rules,
)
from prometheus_client import REGISTRY

from gateway.app import GraphQLConfig
from gateway.documents import MAX_RULE_SETS, DocumentCache
from tests.gateway.conftest import Calls, counting_schema, serve_schema


class CountingRule(ValidationRule):
    """Counts how often validation really runs."""

    runs: ClassVar[int] = 0

    def enter_document(self, *_: Any) -> None:
        CountingRule.runs += 1


class NoHitsRule(ValidationRule):
    """A rule some requests add: refuses the field `hits`."""

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.name.value == "hits":
            self.report_error(GraphQLError("hits is not for you", node))


@pytest.fixture
def schema() -> GraphQLSchema:
    return counting_schema(Calls())


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    CountingRule.runs = 0


def rules(*extra: type[ValidationRule]) -> tuple[type[ValidationRule], ...]:
    return (*specified_rules, CountingRule, *extra)


def test_a_document_is_parsed_once_per_text() -> None:
    cache = DocumentCache()
    first = cache.parse("{ hits }")
    assert cache.parse("{ hits }") is first
    assert cache.parse("{ tags }") is not first
    assert cache.entry(first) is not None
    assert len(cache) == 2


def test_a_document_is_validated_once_per_schema_and_rule_set(schema: GraphQLSchema) -> None:
    cache = DocumentCache()
    document = cache.parse("{ hits }")
    assert cache.validate(schema, document, rules()) == []
    assert cache.validate(schema, document, rules()) == []
    assert CountingRule.runs == 1
    # Another rule set (a request-dependent rule) is validated, and remembered, apart.
    refused = cache.validate(schema, document, rules(NoHitsRule))
    assert [error.message for error in refused] == ["hits is not for you"]
    assert cache.validate(schema, document, rules()) == []
    assert [e.message for e in cache.validate(schema, document, rules(NoHitsRule))] == [
        "hits is not for you"
    ]
    assert CountingRule.runs == 2


def test_another_schema_gets_its_own_validation(schema: GraphQLSchema) -> None:
    cache = DocumentCache()
    other = build_schema("type Query { tags: [String] }")
    document = cache.parse("{ hits }")
    assert cache.validate(schema, document, rules()) == []
    errors = cache.validate(other, document, rules())
    assert [error.message for error in errors] == ["Cannot query field 'hits' on type 'Query'."]
    assert cache.validate(schema, document, rules()) == []


def test_rule_sets_past_the_bound_are_validated_every_time(schema: GraphQLSchema) -> None:
    cache = DocumentCache()
    document = cache.parse("{ hits }")
    one_off = [type(f"Rule{i}", (ValidationRule,), {}) for i in range(MAX_RULE_SETS + 1)]
    for rule in one_off:
        cache.validate(schema, document, rules(rule))
    entry = cache.entry(document)
    assert entry is not None and len(entry.validations) == MAX_RULE_SETS
    cache.validate(schema, document, rules(one_off[-1]))
    assert CountingRule.runs == MAX_RULE_SETS + 2


def test_the_cache_is_bounded_by_entries_and_total_size(schema: GraphQLSchema) -> None:
    cache = DocumentCache(max_entries=2, max_total_chars=30)
    first = cache.parse("{ hits }")
    cache.parse("{ tags }")
    cache.parse("{ hits }")  # used again: the least recently used is now "{ tags }"
    third = cache.parse("{ node { id } }")
    assert len(cache) == 2
    assert cache.entry(first) is not None and cache.entry(third) is not None
    assert cache.parse("{ tags }") is not None
    assert cache.entry(first) is None  # evicted in turn
    long = cache.parse("{ node { child { id } } }")  # 25 chars: pushes the total past 30
    assert len(cache) == 1 and cache.entry(long) is not None
    assert cache.total_chars == 25


def test_a_long_document_is_not_cached_but_still_checked(schema: GraphQLSchema) -> None:
    cache = DocumentCache(max_document_chars=10)
    document = cache.parse("{ hits tags }")
    assert cache.entry(document) is None and len(cache) == 0
    assert cache.parse("{ hits tags }") is not document
    assert cache.validate(schema, document, rules()) == []
    assert cache.validate(schema, document, rules()) == []
    assert CountingRule.runs == 2


def test_a_disabled_cache_keeps_nothing() -> None:
    cache = DocumentCache(max_entries=0)
    assert cache.parse("{ hits }") is not cache.parse("{ hits }")
    assert len(cache) == 0


def test_too_many_tokens_is_a_syntax_error() -> None:
    cache = DocumentCache(max_tokens=10)
    with pytest.raises(GraphQLError, match="tokens"):
        cache.parse("{ " + "hits " * 20 + "}")


def test_suggestions_can_be_hidden(schema: GraphQLSchema) -> None:
    shown = DocumentCache().validate(schema, DocumentCache().parse("{ hitz }"))
    hidden = DocumentCache(hide_suggestions=True).validate(
        schema, DocumentCache().parse("{ hitz }")
    )
    assert "Did you mean 'hits'?" in shown[0].message
    assert hidden[0].message == "Cannot query field 'hitz' on type 'Query'."


def cache_look_ups(result: str) -> float:
    value = REGISTRY.get_sample_value("haunted_graphql_document_cache_total", {"result": result})
    return value or 0.0


async def test_requests_share_the_cached_document(calls: Calls) -> None:
    async with serve_schema(GraphQLConfig(), calls=calls) as client:
        hits, misses = cache_look_ups("hit"), cache_look_ups("miss")
        for _ in range(3):
            response = await client.post("/graphql", json={"query": "{ hits tags }"})
            assert response.json()["data"]["tags"] == ["a", "b"]
        other = await client.post("/graphql", json={"query": "query Named { hits }"})
    assert other.json() == {"data": {"hits": 7}}
    assert cache_look_ups("miss") - misses == 2
    assert cache_look_ups("hit") - hits == 2
