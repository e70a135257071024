"""Every root field of the served schema (contract and extensions) has a resolver."""

from __future__ import annotations

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
