"""The default binding of a declared service's root fields to its facade, by name.

A Query or Mutation field that a service's schema file (gateway/schema/<name>.graphql)
declares, and that no resolver in gateway/resolvers/<name>.py binds, resolves to the
method of the same name in snake_case on the facade `services[<name>]`, called with the
caller and the field's arguments (snake_case, as Ariadne's `convert_names_case` passes
them): `reportsSummary(teamId: ID)` calls `await services.reports.reports_summary(caller,
team_id=...)`. So such a field needs no hand-written resolver.

Nothing else changes: the facade's `@requires` checks the permission, its errors are
mapped as any resolver's are, and an explicit resolver always wins. A root field left
with neither a resolver nor such a method (or a method that does not take its arguments)
stops the schema from being built, naming the field and what to write.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from importlib.resources import files
from typing import Any

from ariadne import convert_camel_case_to_snake
from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    parse,
)

from gateway.resolvers.common import caller

ROOTS = ("Query", "Mutation")  # a subscription needs its source: always written by hand


class UnboundField(RuntimeError):
    """Root fields with neither a resolver nor a facade method of their name."""


def declared_fields(module: str) -> list[tuple[str, str]]:
    """(root type, field) of each Query and Mutation field gateway/schema/<module>.graphql
    declares."""
    path = files("gateway") / "schema" / f"{module}.graphql"
    if not path.is_file():
        return []
    found = []
    for definition in parse(path.read_text()).definitions:
        if (
            isinstance(definition, ObjectTypeDefinitionNode | ObjectTypeExtensionNode)
            and definition.name.value in ROOTS
        ):
            found += [(definition.name.value, node.name.value) for node in definition.fields or ()]
    return found


def facade_resolver(method: Callable[..., Any]) -> Callable[..., Any]:
    """The resolver that calls `method(caller, **arguments)` (awaited when it is async)."""

    async def resolve(_: Any, info: GraphQLResolveInfo, **arguments: Any) -> Any:
        found = method(caller(info), **arguments)  # snake_case: convert_names_case
        return await found if inspect.isawaitable(found) else found

    resolve.facade_method = method  # type: ignore[attr-defined] # the docs read its guard
    return resolve


def _refusal(method: Callable[..., Any], field: GraphQLField) -> str | None:
    """Why `method` cannot take the caller and this field's arguments, or None."""
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return None  # not introspectable: the call itself will say
    arguments = {convert_camel_case_to_snake(name): None for name in field.args}
    try:
        signature.bind(None, **arguments)
    except TypeError as error:
        return str(error)
    return None


class FacadeFields:
    """An Ariadne bindable (`bind_to_schema`), bound after the services' own resolvers:
    each declared, still unbound root field gets its facade method's resolver."""

    def __init__(
        self,
        facades: Mapping[str, Any],
        modules: tuple[str, ...],
        declared: Callable[[str], list[tuple[str, str]]] = declared_fields,
    ) -> None:
        self.facades = facades
        self.owners = {key: module for module in modules for key in declared(module)}

    def bind_to_schema(self, schema: GraphQLSchema) -> None:
        problems = []
        for root_name in ROOTS:
            root = schema.type_map.get(root_name)
            if not isinstance(root, GraphQLObjectType):
                continue
            for name, field in root.fields.items():
                if field.resolve is not None:
                    continue
                problem = self._bind(root_name, name, field)
                if problem:
                    problems.append(problem)
        if problems:
            raise UnboundField("\n".join(problems))

    def _bind(self, root: str, name: str, field: GraphQLField) -> str | None:
        method_name = convert_camel_case_to_snake(name)
        module = self.owners.get((root, name))
        if module is None:
            return (
                f"{root}.{name} has no resolver and no service declares it: bind it in its "
                "module's gateway/resolvers/<service>.py"
            )
        where = f"{root}.{name} (gateway/schema/{module}.graphql)"
        facade = self.facades.get(module)
        method = getattr(facade, method_name, None) if facade is not None else None
        if not callable(method):
            return (
                f"{where} has no resolver, and the {module!r} facade has no method "
                f"{method_name}(caller, ...): write one of the two"
            )
        refused = _refusal(method, field)
        if refused:
            return (
                f"{where}: the {module!r} facade's {method_name} does not take the caller "
                f"and the field's arguments ({refused})"
            )
        field.resolve = facade_resolver(method)
        return None
