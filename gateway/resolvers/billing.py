"""Plans, the team's subscription, checkout and portal: resolvers over the billing facade."""

from __future__ import annotations

from ariadne import MutationType, ObjectType, QueryType, SchemaBindable
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.billing import BillingService, HostedSession, Plan, SubscriptionView


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    billing: BillingService = services.billing
    query = QueryType()
    mutation = MutationType()
    plan = ObjectType("Plan")
    subscription = ObjectType("BillingSubscription")
    entitlements = ObjectType("Entitlements")

    @query.field("plans")
    async def resolve_plans(_: None, info: GraphQLResolveInfo) -> list[Plan]:
        return billing.plans()

    @query.field("mySubscription")
    async def resolve_my_subscription(
        _: None, info: GraphQLResolveInfo, teamId: str | None = None
    ) -> SubscriptionView | None:
        return await billing.my_subscription(caller(info), team_id=teamId)

    @mutation.field("createCheckoutSession")
    async def resolve_create_checkout_session(
        _: None, info: GraphQLResolveInfo, planId: str, teamId: str | None = None
    ) -> HostedSession:
        return await billing.create_checkout_session(caller(info), planId, team_id=teamId)

    @mutation.field("createBillingPortalSession")
    async def resolve_create_billing_portal_session(
        _: None, info: GraphQLResolveInfo, teamId: str | None = None
    ) -> HostedSession:
        return await billing.create_portal_session(caller(info), team_id=teamId)

    plan.set_alias("priceCents", "price_cents")
    plan.set_alias("isDefault", "default")
    subscription.set_alias("currentPeriodEnd", "current_period_end")
    subscription.set_alias("cancelAtPeriodEnd", "cancel_at_period_end")
    entitlements.set_alias("llmTokensPerMonth", "llm_tokens_per_month")

    return [query, mutation, plan, subscription, entitlements]
