"""Parsed and validated GraphQL documents, cached by query text.

Parsing and validating a document costs far more than executing a small one
(validation alone is most of a plain server's time per request), and clients
send the same few documents again and again. The cache plugs into Ariadne's
`query_parser` and `query_validator` hooks: a document is parsed once per
distinct text, and validated once per (schema, rule set) it is checked
against. Rules that depend on the request reach the validator as a different
rule set and are cached apart, a few per document at most.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    TypeInfo,
    parse,
    specified_rules,
    validate,
)
from prometheus_client import Counter

DOCUMENT_CACHE = Counter(
    "haunted_graphql_document_cache_total", "GraphQL document cache look-ups", ["result"]
)
_HIT = DOCUMENT_CACHE.labels("hit")
_MISS = DOCUMENT_CACHE.labels("miss")

# Distinct rule sets remembered per document: more means the rules vary per request.
MAX_RULE_SETS = 4

ValidationKey = tuple[GraphQLSchema, tuple[type[ASTValidationRule], ...], int | None]


@dataclass(slots=True, eq=False)
class CachedDocument:
    """One parsed document and what has been derived from it so far."""

    query: str
    document: DocumentNode
    validations: dict[ValidationKey, list[GraphQLError]] = field(default_factory=dict)
    # Derived data of other modules (e.g. limits' analysis), keyed by its owner.
    derived: dict[Any, Any] = field(default_factory=dict)


class DocumentCache:
    """A bounded LRU of documents: by entries, by each document's length and by total length.

    A document longer than `max_document_chars` is parsed and validated every
    time, as without a cache. `max_entries=0` turns the cache off.
    """

    def __init__(
        self,
        *,
        max_entries: int = 1000,
        max_document_chars: int = 10_000,
        max_total_chars: int = 1_000_000,
        max_tokens: int | None = 5_000,
        hide_suggestions: bool = False,
    ) -> None:
        self.max_entries = max_entries
        self.max_document_chars = max_document_chars
        self.max_total_chars = max_total_chars
        self.max_tokens = max_tokens
        self.hide_suggestions = hide_suggestions
        self._entries: OrderedDict[str, CachedDocument] = OrderedDict()
        # The validator and the limits are handed the document, not its text.
        self._by_document: dict[int, CachedDocument] = {}
        self._total_chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total_chars(self) -> int:
        return self._total_chars

    def parse(self, query: str) -> DocumentNode:
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
            _HIT.inc()
            return entry.document
        _MISS.inc()
        document = parse(query, max_tokens=self.max_tokens)
        if len(query) <= self.max_document_chars and self.max_entries > 0:
            self._store(CachedDocument(query, document))
        return document

    def _store(self, entry: CachedDocument) -> None:
        self._entries[entry.query] = entry
        self._by_document[id(entry.document)] = entry
        self._total_chars += len(entry.query)
        while self._entries and (
            len(self._entries) > self.max_entries or self._total_chars > self.max_total_chars
        ):
            _, evicted = self._entries.popitem(last=False)
            del self._by_document[id(evicted.document)]
            self._total_chars -= len(evicted.query)

    def entry(self, document: DocumentNode) -> CachedDocument | None:
        """The cache entry of a document this cache returned, while it is cached."""
        return self._by_document.get(id(document))

    def validate(
        self,
        schema: GraphQLSchema,
        document_ast: DocumentNode,
        rules: Collection[type[ASTValidationRule]] | None = None,
        max_errors: int | None = None,
        type_info: TypeInfo | None = None,
    ) -> list[GraphQLError]:
        """Ariadne's QueryValidator: graphql.validate, remembered per schema and rule set."""
        rule_set = tuple(rules) if rules is not None else specified_rules
        entry = self._by_document.get(id(document_ast))
        if entry is None:
            return self._validate(schema, document_ast, rule_set, max_errors)
        key: ValidationKey = (schema, rule_set, max_errors)
        errors = entry.validations.get(key)
        if errors is None:
            errors = self._validate(schema, document_ast, rule_set, max_errors)
            if len(entry.validations) < MAX_RULE_SETS:
                entry.validations[key] = errors
        return list(errors)

    def _validate(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: Collection[type[ASTValidationRule]],
        max_errors: int | None,
    ) -> list[GraphQLError]:
        return validate(schema, document, rules, max_errors, hide_suggestions=self.hide_suggestions)

    # Ariadne's hooks: GraphQL(query_parser=cache.query_parser, query_validator=cache.validate)
    def query_parser(self, _context: Any, data: dict[str, Any]) -> DocumentNode:
        return self.parse(data["query"])
