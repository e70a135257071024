"""Plans, the team's subscription, checkout and portal: resolvers over the billing facade."""

from __future__ import annotations

from ariadne import MutationType, QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.billing import BillingService, HostedSession, Plan, SubscriptionView


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    billing: BillingService = services.billing
    query = QueryType()
    mutation = MutationType()

    @query.field("plans")
    async def resolve_plans(_: None, info: GraphQLResolveInfo) -> list[Plan]:
        return billing.plans()

    @query.field("mySubscription")
    async def resolve_my_subscription(
        _: None, info: GraphQLResolveInfo, team_id: str | None = None
    ) -> SubscriptionView | None:
        return await billing.my_subscription(caller(info), team_id=team_id)

    @mutation.field("createCheckoutSession")
    async def resolve_create_checkout_session(
        _: None, info: GraphQLResolveInfo, plan_id: str, team_id: str | None = None
    ) -> HostedSession:
        return await billing.create_checkout_session(caller(info), plan_id, team_id=team_id)

    @mutation.field("createBillingPortalSession")
    async def resolve_create_billing_portal_session(
        _: None, info: GraphQLResolveInfo, team_id: str | None = None
    ) -> HostedSession:
        return await billing.create_portal_session(caller(info), team_id=team_id)

    return [query, mutation]
