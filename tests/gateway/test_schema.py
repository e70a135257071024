"""Every root field of the served schema (contract and extensions) has a resolver."""

from __future__ import annotations

from typing import Any

from ariadne import convert_camel_case_to_snake
from graphql import GraphQLObjectType

from gateway.graphql import build_schema
from haunted.runtime import Haunted


async def test_every_root_field_is_bound(facades: Haunted) -> None:
    schema = build_schema(facades.services, facades.hub)
    unbound = [
        f"{root.name}.{name}"
        for root in (schema.query_type, schema.mutation_type)
        if isinstance(root, GraphQLObjectType)
        for name, field in root.fields.items()
        if field.resolve is None
    ]
    unsourced = [
        f"Subscription.{name}"
        for name, field in (
            schema.subscription_type.fields if schema.subscription_type else {}
        ).items()
        if field.subscribe is None
    ]
    # A field without a resolver would answer null, silently: bind it in its service's module.
    assert unbound + unsourced == []


async def test_every_field_and_argument_maps_to_its_snake_case_name(facades: Haunted) -> None:
    """One naming rule: the facades speak snake_case and the schema maps every camelCase
    name to it (Ariadne's convert_names_case), for fields and arguments alike."""
    schema = build_schema(facades.services, facades.hub)
    unmapped = []
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType) or type_.name.startswith("__"):
            continue
        for name, field in type_.fields.items():
            camel = any(letter.isupper() for letter in name)
            if camel and field.resolve is None:
                unmapped.append(f"{type_.name}.{name}")
            for arg_name, arg in field.args.items():
                expected = convert_camel_case_to_snake(arg_name)
                if (arg.out_name or arg_name) != expected:
                    unmapped.append(f"{type_.name}.{name}({arg_name})")
    assert unmapped == []


async def test_camel_case_fields_read_the_views_snake_case_attributes(facades: Haunted) -> None:
    schema = build_schema(facades.services, facades.hub)
    plan = facades.services.billing.plans()[0]
    fields = schema.type_map["Plan"].fields  # type: ignore[union-attr]
    info: Any = None
    assert fields["priceCents"].resolve(plan, info) == plan.price_cents
    assert fields["isDefault"].resolve(plan, info) is plan.default
