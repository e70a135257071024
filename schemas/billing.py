"""Events owned by the billing service: subscriptions, invoices, payments."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from schemas.base import Audience, Event, Timestamp


class Entitlements(BaseModel):
    """What the team's plan lets it do (infra/plans.yaml), as the subscription events carry it.

    Every field is optional and unknown keys are kept: the field was published as an
    open object, so a record written before a field existed, or by a newer billing
    with a new limit, still reads. Billing validates the values (infra/plans.yaml).
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    llm_tokens_per_month: int | None = None
    llm_requests_per_minute: int | None = None
    llm_tokens_per_minute: int | None = None
    seats: int | None = None
    features: tuple[str, ...] | None = None


class _BillingEvent(Event):
    source: ClassVar[str] = "billing"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    push_permission: ClassVar[str] = "billing:read"


class SubscriptionActivated(_BillingEvent):
    """A team's subscription became active: its plan's entitlements apply."""

    topic: ClassVar[str] = "subscription.activated"
    # v2: the entitlements are described (Entitlements); v1 records still read.
    version: ClassVar[int] = 2
    team_id: str
    subscription_id: str
    plan_id: str
    status: str
    current_period_end: Timestamp
    # The plan's entitlements (infra/plans.yaml); on cancel, the default plan's.
    # A project addition to the contract: optional, so older records still read.
    entitlements: Entitlements | None = None


class SubscriptionUpdated(_BillingEvent):
    """A team's subscription changed plan, status or period."""

    topic: ClassVar[str] = "subscription.updated"
    # v2: the entitlements are described (Entitlements); v1 records still read.
    version: ClassVar[int] = 2
    team_id: str
    subscription_id: str
    plan_id: str
    status: str
    current_period_end: Timestamp
    # The plan's entitlements (infra/plans.yaml); on cancel, the default plan's.
    # A project addition to the contract: optional, so older records still read.
    entitlements: Entitlements | None = None


class SubscriptionCanceled(_BillingEvent):
    topic: ClassVar[str] = "subscription.canceled"
    # v2: the entitlements are described (Entitlements); v1 records still read.
    version: ClassVar[int] = 2
    team_id: str
    subscription_id: str
    plan_id: str
    canceled_at: Timestamp
    # The plan's entitlements (infra/plans.yaml); on cancel, the default plan's.
    # A project addition to the contract: optional, so older records still read.
    entitlements: Entitlements | None = None


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


# This module's topics, in the catalog's order (schemas.CATALOG reads it).
EVENTS: tuple[type[Event], ...] = (
    SubscriptionActivated,
    SubscriptionUpdated,
    SubscriptionCanceled,
    InvoicePaid,
    PaymentFailed,
)
