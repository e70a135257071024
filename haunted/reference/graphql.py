"""The GraphQL reference, from `gateway/schema` and the resolvers.

The permission a field needs is read from the code, never written down twice:
each resolver in `gateway/resolvers/` is found by its `@<type>.field("name")` (or
`.source`) decorator, the facade methods it calls are found in its body, and
their `@requires` guards name the permissions. A resolver that calls `caller(info)`
needs a signed-in caller. A root field no resolver binds calls its service's facade
method of the same name (gateway/conventions.py): that method's guard.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

from ariadne import convert_camel_case_to_snake
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLType,
    GraphQLUnionType,
    build_schema,
    get_named_type,
    is_specified_scalar_type,
)
from graphql.language import print_ast

import gateway.resolvers
from gateway import errors as gateway_errors
from gateway import persisted
from gateway.conventions import declared_fields
from gateway.graphql import type_defs
from haunted.reference.markdown import cell, code, front_matter, slug, table
from services.errors import DomainError
from services.principal import guarded_permission

ROOT_TYPES = {"QueryType": "Query", "MutationType": "Mutation", "SubscriptionType": "Subscription"}

# Codes the gateway itself answers with, beside the domain errors' (services/errors.py).
GATEWAY_CODES = {
    gateway_errors.BAD_USER_INPUT: (
        "Also: syntax and validation errors, and documents refused by a limit "
        "(`extensions.limit` names it: `depth`, `aliases`, `cost`, ...)."
    ),
    persisted.NOT_FOUND: (
        "An APQ hash the gateway does not know: send it again with the query "
        "(answered with HTTP 200, as Apollo clients expect)."
    ),
    persisted.NOT_SUPPORTED: (
        "Persisted queries are off (`HAUNTED_GRAPHQL_PERSISTED_QUERIES=false`)."
    ),
    gateway_errors.INTERNAL: (
        "Anything else, with a `requestId` to find it in the logs and never a stack trace. "
        "An operation that runs past `HAUNTED_GRAPHQL_TIMEOUT_S` is answered with HTTP 504 "
        'and `INTERNAL` with `extensions.limit = "timeout"`.'
    ),
}


@dataclass
class Guard:
    """What a resolver needs: a signed-in caller, and the permissions of its facade calls."""

    signed_in: bool = False
    permissions: set[str] = field(default_factory=set)

    def text(self, names_team: bool = True, nested: bool = False) -> str:
        if self.permissions:
            names = " or ".join(code(p) for p in sorted(self.permissions))
            if nested:
                return f"{names} in the team this object belongs to"
            if names_team:
                return f"{names} in the team `teamId` names, or else the caller's default team"
            return f"{names} in the caller's default team"
        if self.signed_in:
            return "a signed-in caller (a token or an API key); no team permission"
        return "nothing: public"


def schema() -> GraphQLSchema:
    return build_schema("\n".join(type_defs()))


def _classes_of(module: object, function: ast.FunctionDef) -> dict[str, type]:
    """The bindables function's facades, by name: its parameters annotated with a
    facade class, and its annotated locals (`auth: AuthService = services.auth`)."""
    annotated: list[tuple[str, ast.expr | None]] = [
        (arg.arg, arg.annotation) for arg in function.args.args
    ]
    annotated += [
        (node.target.id, node.annotation)
        for node in function.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    ]
    found: dict[str, type] = {}
    for name, annotation in annotated:
        if isinstance(annotation, ast.Name):
            value = getattr(module, annotation.id, None)
            if isinstance(value, type):
                found[name] = value
    return found


def _bindings(function: ast.FunctionDef) -> dict[str, str]:
    """Local variable -> GraphQL type it binds (`query = QueryType()`, `ObjectType("User")`)."""
    names: dict[str, str] = {}

    def bind(target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name) and isinstance(value, ast.Call):
            func = value.func
            if isinstance(func, ast.Name) and func.id in ROOT_TYPES:
                names[target.id] = ROOT_TYPES[func.id]
            elif (
                isinstance(func, ast.Name)
                and func.id in ("ObjectType", "InterfaceType")
                and value.args
                and isinstance(value.args[0], ast.Constant)
            ):
                names[target.id] = str(value.args[0].value)

    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for t, v in zip(target.elts, node.value.elts, strict=True):
                        bind(t, v)
                else:
                    bind(target, node.value)
    return names


def guards() -> dict[tuple[str, str], Guard]:
    """(type, field) -> Guard, for every field that has a resolver."""
    found: dict[tuple[str, str], Guard] = {}
    package = Path(gateway.resolvers.__file__).parent
    for info in pkgutil.iter_modules([str(package)]):
        module = importlib.import_module(f"gateway.resolvers.{info.name}")
        tree = ast.parse(inspect.getsource(module))
        for top in tree.body:
            if not isinstance(top, ast.FunctionDef):
                continue
            facades = _classes_of(module, top)
            bound = _bindings(top)
            for node in ast.walk(top):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for decorator in node.decorator_list:
                    if not (
                        isinstance(decorator, ast.Call)
                        and isinstance(decorator.func, ast.Attribute)
                        and decorator.func.attr in ("field", "source")
                        and isinstance(decorator.func.value, ast.Name)
                        and decorator.func.value.id in bound
                        and decorator.args
                        and isinstance(decorator.args[0], ast.Constant)
                    ):
                        continue
                    key = (bound[decorator.func.value.id], str(decorator.args[0].value))
                    guard = found.setdefault(key, Guard())
                    for call in ast.walk(node):
                        if not isinstance(call, ast.Call):
                            continue
                        func = call.func
                        if isinstance(func, ast.Name) and func.id == "caller":
                            guard.signed_in = True
                        if (
                            isinstance(func, ast.Attribute)
                            and isinstance(func.value, ast.Name)
                            and func.value.id in facades
                        ):
                            method = getattr(facades[func.value.id], func.attr, None)
                            permission = guarded_permission(method)
                            if permission is not None:
                                guard.permissions.add(permission)
                                guard.signed_in = True
    _facade_fields(found)
    return found


def _facade_fields(found: dict[tuple[str, str], Guard]) -> None:
    """The root fields no resolver binds call their service's facade method of the same
    name (gateway/conventions.py): its guard, from the classes `services.<name>` exports."""
    schemas = Path(gateway.resolvers.__file__).parents[1] / "schema"
    for path in sorted(schemas.glob("*.graphql")):
        try:
            package = importlib.import_module(f"services.{path.stem}")
        except ImportError:
            continue  # the contract, or GraphQL spanning services (all bound by resolvers)
        classes = [value for value in vars(package).values() if isinstance(value, type)]
        for key in declared_fields(path.stem):
            if key in found:
                continue
            method_name = convert_camel_case_to_snake(key[1])
            for cls in classes:
                method = getattr(cls, method_name, None)
                if callable(method):
                    permission = guarded_permission(method)
                    found[key] = Guard(True, {permission} if permission else set())
                    break


def _type_link(type_: GraphQLType) -> str:
    named = get_named_type(type_)
    text = code(str(type_))
    if is_specified_scalar_type(named):
        return text
    return f"[{text}](types.md#{slug(named.name)})"


def _default(argument: GraphQLArgument) -> str:
    if argument.default_value is inspect.Parameter.empty or argument.ast_node is None:
        return ""
    node = argument.ast_node.default_value
    return code(print_ast(node)) if node is not None else ""


def _signature(name: str, field_: GraphQLField) -> str:
    args = []
    for arg_name, argument in field_.args.items():
        default = ""
        if argument.ast_node is not None and argument.ast_node.default_value is not None:
            default = " = " + print_ast(argument.ast_node.default_value)
        args.append(f"{arg_name}: {argument.type}{default}")
    joined = f"({', '.join(args)})" if args else ""
    return f"{name}{joined}: {field_.type}"


def _arguments(field_: GraphQLField) -> str:
    if not field_.args:
        return ""
    rows = [
        (code(name), _type_link(argument.type), _default(argument), argument.description or "")
        for name, argument in field_.args.items()
    ]
    return table(("argument", "type", "default", "description"), rows)


def root_page(
    title: str, root: GraphQLObjectType | None, found: dict[tuple[str, str], Guard], position: int
) -> str:
    out = [front_matter(title, position, description=f"Every GraphQL {title.lower()} field.")]
    if root is None:
        return "\n".join(out)
    for name in sorted(root.fields):
        field_ = root.fields[name]
        out.append(f"## {name}\n")
        out.append("```graphql\n" + _signature(name, field_) + "\n```\n")
        if field_.description:
            out.append(field_.description + "\n")
        out.append(f"Returns {_type_link(field_.type)}.\n")
        guard = found.get((root.name, name), Guard())
        out.append(f"**Needs:** {guard.text('teamId' in field_.args)}.\n")
        args = _arguments(field_)
        if args:
            out.append(args)
    return "\n".join(out)


def _kind(type_: GraphQLNamedType) -> str:
    kinds = (
        (GraphQLObjectType, "object"),
        (GraphQLInputObjectType, "input"),
        (GraphQLEnumType, "enum"),
        (GraphQLScalarType, "scalar"),
        (GraphQLInterfaceType, "interface"),
        (GraphQLUnionType, "union"),
    )
    return next(text for cls, text in kinds if isinstance(type_, cls))


def types_page(graphql: GraphQLSchema, found: dict[tuple[str, str], Guard]) -> str:
    out = [front_matter("Types", 4, description="Every GraphQL type the API returns or takes.")]
    roots = {
        t.name for t in (graphql.query_type, graphql.mutation_type, graphql.subscription_type) if t
    }
    for name in sorted(graphql.type_map):
        type_ = graphql.type_map[name]
        if name.startswith("__") or name in roots or is_specified_scalar_type(type_):
            continue
        out.append(f"## {name}\n")
        out.append(f"*{_kind(type_)}*\n")
        if type_.description:
            out.append(type_.description + "\n")
        if isinstance(type_, GraphQLEnumType):
            out.append(
                table(
                    ("value", "description"),
                    [(code(v), value.description or "") for v, value in type_.values.items()],
                )
            )
        elif isinstance(type_, GraphQLObjectType | GraphQLInterfaceType):
            rows = []
            for field_name, field_ in type_.fields.items():
                guard = found.get((name, field_name))
                needs = ""
                if guard and (guard.permissions or guard.signed_in):
                    needs = guard.text(nested=True)
                args = ", ".join(f"{a}: {arg.type}" for a, arg in field_.args.items())
                rows.append(
                    (
                        code(field_name + (f"({args})" if args else "")),
                        _type_link(field_.type),
                        field_.description or "",
                        needs,
                    )
                )
            if any(row[3] for row in rows):
                out.append(table(("field", "type", "description", "needs"), rows))
            else:
                out.append(table(("field", "type", "description"), [row[:3] for row in rows]))
        elif isinstance(type_, GraphQLInputObjectType):
            inputs = [
                (code(f), _type_link(v.type), v.description or "") for f, v in type_.fields.items()
            ]
            out.append(table(("field", "type", "description"), inputs))
        elif isinstance(type_, GraphQLUnionType):
            out.append("One of " + ", ".join(_type_link(t) for t in type_.types) + ".\n")
    return "\n".join(out)


def error_codes() -> dict[str, str]:
    """Every `extensions.code` the API answers with, and when."""
    codes: dict[str, str] = {}
    domain = [e for e in DomainError.__subclasses__() if e.__module__ == DomainError.__module__]
    for error in sorted(domain, key=lambda e: e.code):
        codes[error.code] = inspect.cleandoc(error.__doc__ or "")
    for code_, text in GATEWAY_CODES.items():
        codes[code_] = f"{codes[code_]} {text}" if code_ in codes else text
    return codes


def errors_page() -> str:
    out = [front_matter("Error codes", 5, description="Every extensions.code of the API.")]
    out.append(
        "Every GraphQL error carries `extensions.code`, one of these, and never a stack trace.\n"
    )
    for code_, text in error_codes().items():
        out.append(f"## {code_}\n")
        out.append(cell(text) + "\n")
    return "\n".join(out)


def pages() -> dict[str, str]:
    graphql = schema()
    found = guards()
    return {
        "graphql/queries.md": root_page("Queries", graphql.query_type, found, 1),
        "graphql/mutations.md": root_page("Mutations", graphql.mutation_type, found, 2),
        "graphql/subscriptions.md": root_page("Subscriptions", graphql.subscription_type, found, 3),
        "graphql/types.md": types_page(graphql, found),
        "graphql/errors.md": errors_page(),
    }


def root_fields() -> list[tuple[str, str]]:
    graphql = schema()
    return [
        (root.name, name)
        for root in (graphql.query_type, graphql.mutation_type, graphql.subscription_type)
        if root is not None
        for name in root.fields
    ]
