"""The GraphQL API: the contract's schema plus its extensions, bound to the facades.

The schema is every `.graphql` file in gateway/schema/: `contract.graphql` is
the public contract verbatim; each other file extends it for one service.
Each service's resolvers live in gateway/resolvers/<service>.py, whose
`bindables(services, hub)` binds them; a root field no resolver binds calls the
facade method of its name (gateway/conventions.py), so a service whose fields are
all such calls has no resolver module. Which services there are, and which of
them have GraphQL, is each one's declaration (haunted/services.py): the
composition root passes both in `Services`, so nothing here lists them.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Protocol, cast

from ariadne import SchemaBindable, make_executable_schema
from graphql import GraphQLSchema

from gateway.conventions import FacadeFields
from gateway.push import PushHub
from gateway.resolvers import events
from gateway.resolvers.common import SCALARS

if TYPE_CHECKING:
    from services.auth import AuthService
    from services.billing import BillingService
    from services.exports import DataExports

CONTRACT = "contract.graphql"
RESOLVERS = "gateway.resolvers"


class Services(Mapping[str, Any]):
    """The facades the gateway calls, by the name each service's declaration gives
    them, built once by the composition root; and the services' GraphQL modules
    (`gateway/resolvers/<name>.py`, in declaration order) that bind them.

    `services.reports` reads the facade named "reports" (typed `Any`); the ones the
    gateway itself calls outside GraphQL are typed properties."""

    __slots__ = ("_facades", "graphql")

    def __init__(self, facades: Mapping[str, Any], graphql: Sequence[str] = ()) -> None:
        self._facades = dict(facades)
        self.graphql = tuple(graphql)

    def __getitem__(self, name: str) -> Any:
        return self._facades[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._facades)

    def __len__(self) -> int:
        return len(self._facades)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # unset slots (copy, pickle) are not facades
            raise AttributeError(name)
        try:
            return self._facades[name]
        except KeyError:
            raise AttributeError(f"no facade named {name!r} is declared") from None

    @property
    def auth(self) -> AuthService:  # every request's authentication
        return cast("AuthService", self._facades["auth"])

    @property
    def billing(self) -> BillingService:  # the Stripe webhook's route
        return cast("BillingService", self._facades["billing"])

    @property
    def exports(self) -> DataExports:  # the export download's route
        return cast("DataExports", self._facades["exports"])


class GraphQLModule(Protocol):
    """A service's resolver module: its bindables, over the built facades."""

    def bindables(self, services: Services, hub: PushHub) -> list[SchemaBindable]: ...


def type_defs() -> list[str]:
    directory = files("gateway") / "schema"
    names = sorted(
        (entry.name for entry in directory.iterdir() if entry.name.endswith(".graphql")),
        key=lambda name: (name != CONTRACT, name),
    )
    return [(directory / name).read_text() for name in names]


def graphql_module(name: str) -> GraphQLModule | None:
    """gateway/resolvers/<name>.py, named by a service's declaration; None when the
    service has none (its fields all bind to its facade by name: gateway/conventions.py)."""
    if importlib.util.find_spec(f"{RESOLVERS}.{name}") is None:
        return None
    return cast(GraphQLModule, importlib.import_module(f"{RESOLVERS}.{name}"))


def build_schema(services: Services, hub: PushHub) -> GraphQLSchema:
    bindables: list[SchemaBindable] = [*SCALARS, *events.bindables(hub)]
    for name in services.graphql:
        module = graphql_module(name)
        if module is not None:
            bindables.extend(module.bindables(services, hub))
    # Last: what no resolver bound goes to its facade's method of the same name, or the
    # build stops naming the field (explicit resolvers win).
    bindables.append(FacadeFields(services, services.graphql))
    # One naming rule: services speak snake_case; each camelCase field and argument of
    # the schema maps to its snake_case name (Ariadne's converter), never by hand.
    return make_executable_schema(type_defs(), *bindables, convert_names_case=True)
