"""Limits on what one GraphQL document may ask: depth, aliases and an estimated cost.

Checked after validation and before execution, so a refused document runs no
resolver. The analysis of a document is done once per operation and kept with
the cached document; only a cost whose list sizes come from variables is
evaluated again per request, over the kept analysis.

Cost: every field costs 1, and a list field multiplies the cost of what is
selected under it by its size: the value of its `first` (or `last`, `limit`)
argument when given, else that argument's default in the schema, else
`default_list_size`. Introspection lists count as size 1: they are read from
the schema in memory, and the depth limit bounds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    TypeNameMetaFieldDef,
    VariableNode,
    get_named_type,
)
from graphql.utilities.coerce_input_value import coerce_default_value
from prometheus_client import Counter

from gateway.documents import DocumentCache

REFUSED = Counter("haunted_graphql_refused_total", "GraphQL requests refused by a limit", ["limit"])

SIZE_ARGUMENTS = ("first", "last", "limit")
CODE = "BAD_USER_INPUT"


class LimitExceeded(GraphQLError):
    """A request over one of the gateway's limits: BAD_USER_INPUT, naming the limit."""

    def __init__(self, limit: str, message: str, maximum: float, actual: float | None) -> None:
        extensions: dict[str, Any] = {"code": CODE, "limit": limit, "max": maximum}
        if actual is not None:
            extensions["actual"] = actual
        super().__init__(message, extensions=extensions)
        REFUSED.labels(limit).inc()


@dataclass(frozen=True, slots=True)
class _Variable:
    """A list size given by a variable; `default` when the variable is absent or null."""

    name: str
    default: int


@dataclass(slots=True, eq=False)
class _Selections:
    """The cost of a selection set: items of (own cost, list size, what is selected under)."""

    items: list[tuple[int, int | _Variable, _Selections | None]] = field(default_factory=list)
    # Known once built when no size below depends on a variable.
    constant: int | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the limits need to know of one operation of a document."""

    depth: int
    aliases: int
    _cost: _Selections

    def cost(self, variables: dict[str, Any] | None) -> int:
        return _evaluate(self._cost, variables if isinstance(variables, dict) else {}, {})


def _size(size: int | _Variable, variables: dict[str, Any]) -> int:
    if isinstance(size, int):
        return size
    value = variables.get(size.name)
    if isinstance(value, int) and not isinstance(value, bool):
        return max(value, 0)
    return size.default


def _evaluate(node: _Selections, variables: dict[str, Any], memo: dict[int, int]) -> int:
    if node.constant is not None:
        return node.constant
    known = memo.get(id(node))
    if known is not None:
        return known
    total = 0
    for own, size, child in node.items:
        total += own
        if child is not None:
            total += _size(size, variables) * _evaluate(child, variables, memo)
    memo[id(node)] = total
    return total


def _fold(node: _Selections) -> None:
    """Computes `constant` when every size below is a literal."""
    total = 0
    for own, size, child in node.items:
        total += own
        if child is None:
            continue
        if isinstance(size, _Variable) or child.constant is None:
            return
        total += size * child.constant
    node.constant = total


class _Analyzer:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        default_list_size: int,
        depth_cutoff: int,
    ) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.default_list_size = default_list_size
        self.depth_cutoff = depth_cutoff
        self.aliases = 0
        self.variable_defaults: dict[str, int] = {}
        for definition in operation.variable_definitions or ():
            value = definition.default_value
            if isinstance(value, IntValueNode):
                self.variable_defaults[definition.variable.name.value] = int(value.value)
        self._fragment_results: dict[str, tuple[_Selections, int]] = {}

    def field_definition(self, parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
        if name == "__typename":
            return TypeNameMetaFieldDef
        if parent is not None and parent is self.schema.query_type:
            if name == "__schema":
                return SchemaMetaFieldDef
            if name == "__type":
                return TypeMetaFieldDef
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return parent.fields.get(name)
        return None

    def list_size(
        self, node: FieldNode, definition: GraphQLField, parent: GraphQLNamedType | None
    ) -> int | _Variable:
        if parent is not None and parent.name.startswith("__"):
            return 1
        for name in SIZE_ARGUMENTS:
            argument = definition.args.get(name)
            if argument is None:
                continue
            try:
                schema_default = coerce_default_value(argument)
            except (GraphQLError, TypeError):  # a default the schema cannot coerce
                schema_default = None
            fallback = (
                schema_default
                if isinstance(schema_default, int) and not isinstance(schema_default, bool)
                else self.default_list_size
            )
            given = next((a for a in node.arguments or () if a.name.value == name), None)
            if given is None:
                return fallback
            if isinstance(given.value, IntValueNode):
                return max(int(given.value.value), 0)
            if isinstance(given.value, VariableNode):
                variable = given.value.name.value
                return _Variable(variable, self.variable_defaults.get(variable, fallback))
            return fallback
        return self.default_list_size

    def selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType | None, depth: int
    ) -> tuple[_Selections, int]:
        """The cost tree of a selection set at `depth`, and the deepest field depth in it."""
        node = _Selections()
        deepest = depth
        if depth > self.depth_cutoff:  # already refused: no need to look further down
            return node, depth
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.alias is not None:
                    self.aliases += 1
                definition = self.field_definition(parent, selection.name.value)
                size: int | _Variable = 1
                child: _Selections | None = None
                below = depth + 1
                if definition is not None and _is_list(definition):
                    size = self.list_size(selection, definition, parent)
                if selection.selection_set is not None:
                    child_type = get_named_type(definition.type) if definition else None
                    child, below = self.selections(selection.selection_set, child_type, depth + 1)
                node.items.append((1, size, child))
                deepest = max(deepest, below)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                fragment_type = self.schema.get_type(condition.name.value) if condition else parent
                child, below = self.selections(selection.selection_set, fragment_type, depth)
                node.items.append((0, 1, child))
                deepest = max(deepest, below)
            elif isinstance(selection, FragmentSpreadNode):
                spread = self.fragment(selection.name.value, depth)
                if spread is not None:
                    child, relative = spread
                    node.items.append((0, 1, child))
                    deepest = max(deepest, depth + relative)
        _fold(node)
        return node, deepest

    def fragment(self, name: str, depth: int) -> tuple[_Selections, int] | None:
        """A fragment's cost tree and its depth relative to where it is spread."""
        known = self._fragment_results.get(name)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None:
            return None
        fragment_type = self.schema.get_type(definition.type_condition.name.value)
        # Analyzed from depth 0 so that one result serves every spread; the cutoff
        # still applies relative to the spread's depth through `depth_cutoff - depth`.
        saved = self.depth_cutoff
        self.depth_cutoff = max(saved - depth, 0)
        try:
            node, deepest = self.selections(definition.selection_set, fragment_type, 0)
        finally:
            self.depth_cutoff = saved
        self._fragment_results[name] = (node, deepest)
        return node, deepest


def _is_list(definition: GraphQLField) -> bool:
    field_type = definition.type
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return isinstance(field_type, GraphQLList)


def select_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == operation_name), None)


def analyze(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    *,
    default_list_size: int = 10,
    depth_cutoff: int = 1_000,
) -> Analysis:
    """Depth, aliases and the cost tree of one operation of a validated document."""
    roots = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }
    analyzer = _Analyzer(schema, document, operation, default_list_size, depth_cutoff)
    try:
        cost, depth = analyzer.selections(operation.selection_set, roots[operation.operation], 0)
    except RecursionError:  # fragments nested past the interpreter's stack
        return Analysis(depth=depth_cutoff + 1, aliases=analyzer.aliases, _cost=_Selections())
    return Analysis(depth=depth, aliases=analyzer.aliases, _cost=cost)


class QueryLimits:
    """The per-document limits of one schema; `check` raises LimitExceeded."""

    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        max_depth: int = 15,
        max_aliases: int = 30,
        max_cost: int = 10_000,
        default_list_size: int = 10,
        cache: DocumentCache | None = None,
    ) -> None:
        self.schema = schema
        self.max_depth = max_depth
        self.max_aliases = max_aliases
        self.max_cost = max_cost
        self.default_list_size = default_list_size
        self.cache = cache

    def analysis(self, document: DocumentNode, operation_name: str | None) -> Analysis | None:
        entry = self.cache.entry(document) if self.cache is not None else None
        key = (self, operation_name)
        if entry is not None:
            known: Analysis | None = entry.derived.get(key)
            if known is not None:
                return known
        operation = select_operation(document, operation_name)
        if operation is None:  # execution answers this one, before any resolver
            return None
        result = analyze(
            self.schema,
            document,
            operation,
            default_list_size=self.default_list_size,
            depth_cutoff=self.max_depth,
        )
        if entry is not None:
            entry.derived[key] = result
        return result

    def check(self, document: DocumentNode, operation_name: str | None, variables: Any) -> None:
        analysis = self.analysis(document, operation_name)
        if analysis is None:
            return
        if analysis.depth > self.max_depth:
            raise LimitExceeded(
                "depth",
                f"query depth limit exceeded: the document nests fields deeper than "
                f"{self.max_depth} levels",
                self.max_depth,
                None,
            )
        if analysis.aliases > self.max_aliases:
            raise LimitExceeded(
                "aliases",
                f"alias limit exceeded: the document has {analysis.aliases} aliases, "
                f"over the limit of {self.max_aliases}",
                self.max_aliases,
                analysis.aliases,
            )
        cost = analysis.cost(variables)
        if cost > self.max_cost:
            raise LimitExceeded(
                "cost",
                f"query cost limit exceeded: the estimated cost is {cost}, "
                f"over the limit of {self.max_cost}",
                self.max_cost,
                cost,
            )
