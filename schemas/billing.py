"""Events owned by the billing service: subscriptions, invoices, payments."""

from __future__ import annotations

from typing import Any, ClassVar

from schemas.base import Audience, Event, Timestamp


class _BillingEvent(Event):
    source: ClassVar[str] = "billing"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM


class SubscriptionActivated(_BillingEvent):
    """A team's subscription became active: its plan's entitlements apply."""

    topic: ClassVar[str] = "subscription.activated"
    team_id: str
    subscription_id: str
    plan_id: str
    status: str
    current_period_end: Timestamp
    # The plan's entitlements (infra/plans.yaml); on cancel, the default plan's.
    # A project addition to the contract: optional, so older records still read.
    entitlements: dict[str, Any] | None = None


class SubscriptionUpdated(_BillingEvent):
    """A team's subscription changed plan, status or period."""

    topic: ClassVar[str] = "subscription.updated"
    team_id: str
    subscription_id: str
    plan_id: str
    status: str
    current_period_end: Timestamp
    # The plan's entitlements (infra/plans.yaml); on cancel, the default plan's.
    # A project addition to the contract: optional, so older records still read.
    entitlements: dict[str, Any] | None = None


class SubscriptionCanceled(_BillingEvent):
    topic: ClassVar[str] = "subscription.canceled"
    team_id: str
    subscription_id: str
    plan_id: str
    canceled_at: Timestamp
    # The plan's entitlements (infra/plans.yaml); on cancel, the default plan's.
    # A project addition to the contract: optional, so older records still read.
    entitlements: dict[str, Any] | None = None


class InvoicePaid(_BillingEvent):
    topic: ClassVar[str] = "invoice.paid"
    team_id: str
    invoice_id: str
    amount_cents: int
    currency: str


class PaymentFailed(_BillingEvent):
    topic: ClassVar[str] = "payment.failed"
    team_id: str
    invoice_id: str
    amount_cents: int
    currency: str
    attempt: int
