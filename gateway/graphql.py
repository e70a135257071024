"""The GraphQL API: the contract's schema plus its extensions, bound to the facades.

The schema is every `.graphql` file in gateway/schema/: `contract.graphql` is
the public contract verbatim; each other file extends it for one service.
Each service's resolvers live in gateway/resolvers/<service>.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

from ariadne import SchemaBindable, make_executable_schema
from graphql import GraphQLSchema

from gateway.push import PushHub
from gateway.resolvers import (
    analytics,
    audit,
    auth,
    billing,
    events,
    flags,
    llm,
    notifications,
    webhooks,
)
from gateway.resolvers.common import SCALARS
from services.analytics import AnalyticsService
from services.audit import AuditService
from services.auth import ApiKeyService, AuthService, TeamService
from services.billing import BillingService
from services.flags import FlagsService
from services.llm import LlmService
from services.notifications import NotificationsService
from services.webhooks import WebhooksService

CONTRACT = "contract.graphql"


@dataclass(frozen=True, slots=True)
class Services:
    """The facades the gateway calls, built once by the composition root."""

    auth: AuthService
    teams: TeamService
    api_keys: ApiKeyService
    analytics: AnalyticsService
    notifications: NotificationsService
    billing: BillingService
    flags: FlagsService
    llm: LlmService
    audit: AuditService
    webhooks: WebhooksService


def type_defs() -> list[str]:
    directory = files("gateway") / "schema"
    names = sorted(
        (entry.name for entry in directory.iterdir() if entry.name.endswith(".graphql")),
        key=lambda name: (name != CONTRACT, name),
    )
    return [(directory / name).read_text() for name in names]


def build_schema(services: Services, hub: PushHub) -> GraphQLSchema:
    bindables: list[SchemaBindable] = [
        *SCALARS,
        *auth.bindables(services.auth, services.teams, services.api_keys),
        *analytics.bindables(services.analytics),
        *events.bindables(hub),
        *notifications.bindables(services.notifications, hub),
        *billing.bindables(services.billing),
        *flags.bindables(services.flags),
        *llm.bindables(services.llm),
        *audit.bindables(services.audit),
        *webhooks.bindables(services.webhooks),
    ]
    return make_executable_schema(type_defs(), *bindables)
