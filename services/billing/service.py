"""The billing facade: plans, the team's subscription, checkout, portal, webhooks."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from events.db import Database
from services.billing.models import (
    BillingCustomer,
    BillingInvoice,
    BillingSubscription,
    LocalCheckoutSession,
)
from services.billing.plans import Entitlements, Plan, PlanCatalog
from services.billing.stripe import HostedSession, StripeGateway
from services.billing.webhooks import (
    ENDED,
    InvalidWebhook,
    WebhookOutcome,
    WebhookProcessor,
    encode_event,
    sign_payload,
    verify_event,
)
from services.errors import BadUserInput, Conflict, NotFound
from services.principal import Caller, ExportSubject, Principal, require_self, requires

log = structlog.get_logger(__name__)

# Offline only: the local test checkout signs its webhooks with this when no secret is set.
LOCAL_WEBHOOK_SECRET = "whsec_haunted_local_test_checkout"  # noqa: S105 - dev only, never prod
_INTERVAL_S = {"month": 30 * 24 * 3600, "year": 365 * 24 * 3600}


@dataclass(frozen=True, slots=True)
class BillingConfig:
    env: str
    public_url: str
    # The web app's billing page: where checkout (Stripe's or the local test one)
    # and the portal send the browser back. Unset: public_url + /app/billing.
    return_url: str | None = None
    webhook_secret: str | None = None
    webhook_tolerance_s: int = 300
    webhook_max_body_bytes: int = 512 * 1024
    # The offline test checkout (and its well-known webhook secret): only when asked for
    # explicitly, and only in dev, so a staging box never takes the public secret.
    local_checkout: bool = False


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    id: str
    plan: Plan
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    entitlements: Entitlements


@dataclass(frozen=True, slots=True)
class LocalCheckoutView:
    id: str
    team_id: str
    plan: Plan
    completed: bool


@dataclass(frozen=True, slots=True)
class SubscriptionExport:
    id: str
    plan_id: str
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None


@dataclass(frozen=True, slots=True)
class InvoiceExport:
    id: str
    subscription_id: str | None
    amount_cents: int
    currency: str
    status: str
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class TeamBillingExport:
    """A team of the user's billing: its subscriptions and invoices (no payment-provider
    customer id, no card: Stripe keeps those)."""

    team_id: str
    subscriptions: list[SubscriptionExport]
    invoices: list[InvoiceExport]


class BillingService:
    """Billing's commands and queries. Stripe is optional: without it, a local test checkout."""

    def __init__(
        self,
        db: Database,
        plans: PlanCatalog,
        config: BillingConfig,
        stripe_gateway: StripeGateway | None = None,
    ) -> None:
        self._db = db
        self._plans = plans
        self._config = config
        self._stripe = stripe_gateway
        self._webhooks = WebhookProcessor(db, plans, stripe_gateway)

    @property
    def config(self) -> BillingConfig:
        return self._config

    @property
    def local_checkout_enabled(self) -> bool:
        """Offline checkout: never with Stripe configured; only in dev, and only asked for."""
        return self._stripe is None and self._config.env == "dev" and self._config.local_checkout

    @property
    def webhook_secret(self) -> str | None:
        if self._config.webhook_secret is not None:
            return self._config.webhook_secret
        return LOCAL_WEBHOOK_SECRET if self.local_checkout_enabled else None

    def plans(self) -> list[Plan]:
        return list(self._plans)

    @requires("billing:read")
    async def my_subscription(
        self, principal: Principal, *, team_id: str | None = None
    ) -> SubscriptionView | None:
        """The team's current (not ended) subscription, or None: the default plan applies."""
        async with self._db.read() as session:
            row = await session.scalar(
                select(BillingSubscription)
                .where(
                    BillingSubscription.team_id == team_id,
                    BillingSubscription.status.not_in(ENDED),
                )
                .order_by(BillingSubscription.updated_at.desc())
                .limit(1)
            )
        if row is None:
            return None
        plan = self._plans.get(row.plan_id) or self._plans.default
        entitled = row.status in ("active", "trialing", "past_due")
        return SubscriptionView(
            id=row.id,
            plan=plan,
            status=row.status,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            entitlements=(plan if entitled else self._plans.default).entitlements,
        )

    async def export_billing(self, caller: Caller, of: ExportSubject) -> list[TeamBillingExport]:
        """The billing of the user's teams where they may read it, for their data export."""
        require_self(caller, of.user_id)
        teams = of.teams_with("billing:read")
        async with self._db.read() as session:
            subscriptions = (
                await session.scalars(
                    select(BillingSubscription)
                    .where(BillingSubscription.team_id.in_(teams))
                    .order_by(BillingSubscription.updated_at, BillingSubscription.id)
                )
            ).all()
            invoices = (
                await session.scalars(
                    select(BillingInvoice)
                    .where(BillingInvoice.team_id.in_(teams))
                    .order_by(BillingInvoice.paid_at, BillingInvoice.id)
                )
            ).all()
        return [
            TeamBillingExport(
                team_id,
                [
                    SubscriptionExport(
                        row.id,
                        row.plan_id,
                        row.status,
                        row.current_period_end,
                        row.cancel_at_period_end,
                        row.canceled_at,
                    )
                    for row in subscriptions
                    if row.team_id == team_id
                ],
                [
                    InvoiceExport(
                        row.id,
                        row.subscription_id,
                        row.amount_cents,
                        row.currency,
                        row.status,
                        row.paid_at,
                    )
                    for row in invoices
                    if row.team_id == team_id
                ],
            )
            for team_id in teams
        ]

    @requires("billing:manage")
    async def create_checkout_session(
        self, principal: Principal, plan_id: str, *, team_id: str | None = None
    ) -> HostedSession:
        """A checkout for `plan_id` in the team; returns where to send the buyer."""
        assert team_id is not None  # the guard resolved it
        plan = self._plans.get(plan_id)
        if plan is None:
            raise NotFound(f"no plan {plan_id!r}", field="planId")
        if plan.default:
            raise BadUserInput(f"the {plan.id} plan needs no checkout", field="planId")
        if await self._has_live_subscription(team_id):
            raise Conflict("the team already has a subscription: use the billing portal")
        customer = await self._customer_for(team_id)
        base = self._config.public_url.rstrip("/")
        if self._stripe is None:
            if not self.local_checkout_enabled:
                raise BadUserInput("checkout needs Stripe: set HAUNTED_STRIPE_API_KEY")
            return await self._create_local_checkout(team_id, plan, customer, base)
        price = plan.stripe_price(self._config.env)
        if price is None:
            raise BadUserInput(
                f"the {plan.id} plan has no Stripe price for {self._config.env}", field="planId"
            )
        return await self._stripe.create_checkout_session(
            customer_id=customer,
            team_id=team_id,
            plan_id=plan.id,
            price_id=price,
            success_url=f"{self.return_url}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{self.return_url}?checkout=canceled",
            idempotency_key=f"haunted-checkout-{uuid.uuid4()}",
        )

    @requires("billing:manage")
    async def create_portal_session(
        self, principal: Principal, *, team_id: str | None = None
    ) -> HostedSession:
        """Stripe's customer portal for the team (needs Stripe and a customer)."""
        if self._stripe is None:
            raise BadUserInput("the billing portal needs Stripe: set HAUNTED_STRIPE_API_KEY")
        async with self._db.read() as session:
            customer = await session.get(BillingCustomer, team_id)
        if customer is None:
            raise NotFound("the team has no billing account yet: check out a plan first")
        return await self._stripe.create_portal_session(
            customer.stripe_customer_id, self.return_url
        )

    @property
    def return_url(self) -> str:
        """The web app's billing page, where buyers come back to."""
        return self._config.return_url or f"{self._config.public_url.rstrip('/')}/app/billing"

    async def handle_webhook(self, payload: bytes, signature: str | None) -> WebhookOutcome:
        """Verifies, then applies a Stripe webhook once. Raises InvalidWebhook (400)."""
        secret = self.webhook_secret
        if secret is None:
            raise InvalidWebhook("no webhook secret is configured")
        if len(payload) > self._config.webhook_max_body_bytes:
            raise InvalidWebhook("the body is too large")
        event = verify_event(payload, signature, secret, self._config.webhook_tolerance_s)
        return await self._webhooks.process(event)

    # -- local test checkout (offline dev only) ------------------------------------

    async def local_checkout(self, session_id: str) -> LocalCheckoutView | None:
        if not self.local_checkout_enabled:
            return None
        async with self._db.read() as session:
            row = await session.get(LocalCheckoutSession, session_id)
        plan = None if row is None else self._plans.get(row.plan_id)
        if row is None or plan is None:
            return None
        return LocalCheckoutView(row.id, row.team_id, plan, row.completed_at is not None)

    async def complete_local_checkout(self, session_id: str) -> tuple[bytes, str]:
        """Marks the local checkout done; returns the signed checkout.session.completed
        webhook (body, Stripe-Signature) to deliver to /webhooks/stripe."""
        secret = self.webhook_secret
        if not self.local_checkout_enabled or secret is None:
            raise NotFound("no local checkout here")
        async with self._db.transaction() as session:
            row = await session.get(LocalCheckoutSession, session_id, with_for_update=True)
            plan = None if row is None else self._plans.get(row.plan_id)
            if row is None or plan is None:
                raise NotFound("no such checkout session")
            if row.completed_at is not None:
                raise Conflict("this checkout session is already completed")
            row.completed_at = datetime.now(UTC)
        now = int(time.time())
        metadata = {"team_id": row.team_id, "plan_id": plan.id}
        subscription: dict[str, Any] = {
            "id": f"sub_local_{uuid.uuid4().hex[:20]}",
            "object": "subscription",
            "customer": row.stripe_customer_id,
            "status": "active",
            "metadata": metadata,
            "cancel_at_period_end": False,
            "current_period_start": now,
            "current_period_end": now + _INTERVAL_S[plan.interval],
            "items": {
                "object": "list",
                "data": [{"price": {"id": plan.stripe_price(self._config.env) or plan.id}}],
            },
        }
        event = {
            "id": f"evt_local_{uuid.uuid4().hex[:20]}",
            "object": "event",
            "type": "checkout.session.completed",
            "created": now,
            "livemode": False,
            "data": {
                "object": {
                    "id": row.id,
                    "object": "checkout.session",
                    "mode": "subscription",
                    "status": "complete",
                    "payment_status": "paid",
                    "client_reference_id": row.team_id,
                    "customer": row.stripe_customer_id,
                    "metadata": metadata,
                    "subscription": subscription,
                }
            },
        }
        payload = encode_event(event)
        return payload, sign_payload(payload, secret)

    async def _create_local_checkout(
        self, team_id: str, plan: Plan, customer: str, base: str
    ) -> HostedSession:
        session_id = f"cs_local_{uuid.uuid4().hex[:24]}"
        async with self._db.transaction() as session:
            session.add(
                LocalCheckoutSession(
                    id=session_id,
                    team_id=team_id,
                    plan_id=plan.id,
                    stripe_customer_id=customer,
                    created_at=datetime.now(UTC),
                )
            )
        return HostedSession(session_id, f"{base}/billing/test-checkout/{session_id}")

    async def _has_live_subscription(self, team_id: str) -> bool:
        async with self._db.read() as session:
            found = await session.scalar(
                select(BillingSubscription.id)
                .where(
                    BillingSubscription.team_id == team_id,
                    BillingSubscription.status.in_(("active", "trialing", "past_due")),
                )
                .limit(1)
            )
        return found is not None

    async def _customer_for(self, team_id: str) -> str:
        """The team's Stripe customer, created once (idempotent on the team at Stripe)."""
        async with self._db.read() as session:
            existing = await session.get(BillingCustomer, team_id)
        if existing is not None:
            return existing.stripe_customer_id
        if self._stripe is not None:
            customer = await self._stripe.create_customer(team_id)
        else:
            customer = f"cus_local_{uuid.uuid4().hex[:20]}"
        try:
            async with self._db.transaction() as session:
                session.add(
                    BillingCustomer(
                        team_id=team_id, stripe_customer_id=customer, created_at=datetime.now(UTC)
                    )
                )
        except IntegrityError:  # a concurrent first checkout stored it first
            async with self._db.read() as session:
                stored = await session.get(BillingCustomer, team_id)
            if stored is None:
                raise
            return stored.stripe_customer_id
        return customer
