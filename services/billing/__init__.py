"""Billing: plans, Stripe checkout and webhooks, subscriptions as events (issue: billing)."""

from services.billing.plans import (
    Entitlements,
    Plan,
    PlanCatalog,
    PlansFileError,
    load_plans,
    parse_plans,
)
from services.billing.service import (
    LOCAL_WEBHOOK_SECRET,
    BillingConfig,
    BillingService,
    LocalCheckoutView,
    SubscriptionView,
)
from services.billing.stripe import HostedSession, PaymentProviderError, StripeGateway
from services.billing.webhooks import InvalidWebhook, WebhookOutcome, sign_payload

__all__ = [
    "LOCAL_WEBHOOK_SECRET",
    "BillingConfig",
    "BillingService",
    "Entitlements",
    "HostedSession",
    "InvalidWebhook",
    "LocalCheckoutView",
    "PaymentProviderError",
    "Plan",
    "PlanCatalog",
    "PlansFileError",
    "StripeGateway",
    "SubscriptionView",
    "WebhookOutcome",
    "load_plans",
    "parse_plans",
    "sign_payload",
]
