"""Stripe webhooks: verified first, each event id once, order-independent, outbox events.

Idempotency: the event id's row commits in the same transaction as the event's
effects and its outbox events, so a redelivery (or a concurrent duplicate, which
waits on the primary key and then fails) changes nothing. Ordering: a subscription
row remembers the (event created, rank) of the state it holds; an older state that
arrives late is ignored. Invoices are keyed by their id, so `invoice.paid` and its
twin `invoice.payment_succeeded` together grant once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import stripe
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events.db import Database
from events.outbox import add_event
from schemas import (
    InvoicePaid,
    PaymentFailed,
    SubscriptionActivated,
    SubscriptionCanceled,
    SubscriptionUpdated,
)
from services.billing.models import (
    BillingCustomer,
    BillingInvoice,
    BillingSubscription,
    StripeWebhookEvent,
)
from services.billing.plans import Plan, PlanCatalog
from services.billing.stripe import StripeGateway

log = structlog.get_logger(__name__)

# States in which the plan's entitlements apply (past_due: a grace period while Stripe retries).
ENTITLED = frozenset({"active", "trialing", "past_due"})
ENDED = frozenset({"canceled", "incomplete_expired"})
# Same-second events order by what they mean: created < updated < deleted.
RANK_CREATED, RANK_UPDATED, RANK_DELETED = 0, 1, 2


class InvalidWebhook(Exception):
    """Not a genuine, well-formed Stripe event: answered 400, nothing written."""


class _StripeEventData(BaseModel):
    object: dict[str, Any]


class StripeEvent(BaseModel):
    """The part of Stripe's event envelope billing relies on."""

    model_config = ConfigDict(extra="ignore")

    id: str
    type: str
    created: int
    data: _StripeEventData


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    status: Literal["processed", "duplicate", "ignored"]
    event_id: str
    type: str


def verify_event(
    payload: bytes, signature: str | None, secret: str, tolerance_s: int
) -> StripeEvent:
    """Checks the signature and timestamp before anything else is read."""
    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance_s)
    except stripe.SignatureVerificationError as error:
        raise InvalidWebhook(f"signature verification failed: {error.user_message}") from None
    except ValueError:  # JSON, UTF-8, or not a Stripe event envelope
        raise InvalidWebhook("the body is not a Stripe event") from None
    try:
        return StripeEvent.model_validate_json(payload)
    except ValidationError:
        raise InvalidWebhook("the body is not a Stripe event") from None


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header, by Stripe's documented scheme (local checkout, tests)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


def _str(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


class _Duplicate(Exception):
    pass


Handler = Callable[[AsyncSession, StripeEvent, "dict[str, Any] | None"], Awaitable[None]]


class WebhookProcessor:
    """Applies verified Stripe events to billing's tables and outbox."""

    def __init__(self, db: Database, plans: PlanCatalog, stripe_gateway: StripeGateway | None):
        self._db = db
        self._plans = plans
        self._stripe = stripe_gateway
        self._handlers: dict[str, Handler] = {
            "checkout.session.completed": self._checkout_completed,
            "customer.subscription.created": self._subscription_changed,
            "customer.subscription.updated": self._subscription_changed,
            "customer.subscription.deleted": self._subscription_changed,
            "invoice.paid": self._invoice_paid,
            "invoice.payment_succeeded": self._invoice_paid,
            "invoice.payment_failed": self._invoice_failed,
        }

    def _entitlements_of(self, plan_id: str) -> dict[str, Any]:
        plan = self._plans.get(plan_id) or self._plans.default
        return plan.entitlements.model_dump(mode="json")

    @property
    def handled_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    async def process(self, event: StripeEvent) -> WebhookOutcome:
        handler = self._handlers.get(event.type)
        if handler is None:
            log.info("stripe event type ignored", event_id=event.id, type=event.type)
            return WebhookOutcome("ignored", event.id, event.type)
        fetched = await self._fetch(event)  # network first: never inside a transaction
        try:
            async with self._db.transaction() as session:
                session.add(
                    StripeWebhookEvent(
                        id=event.id,
                        type=event.type,
                        created=event.created,
                        received_at=datetime.now(UTC),
                    )
                )
                try:
                    await session.flush()  # a concurrent twin waits here, then fails
                except IntegrityError:
                    raise _Duplicate from None
                await handler(session, event, fetched)
        except _Duplicate:
            log.info("stripe event already processed", event_id=event.id, type=event.type)
            return WebhookOutcome("duplicate", event.id, event.type)
        return WebhookOutcome("processed", event.id, event.type)

    async def _fetch(self, event: StripeEvent) -> dict[str, Any] | None:
        """checkout.session.completed names its subscription: read it from Stripe."""
        if event.type != "checkout.session.completed" or self._stripe is None:
            return None
        subscription = event.data.object.get("subscription")
        if not isinstance(subscription, str):
            return None
        async with self._db.read() as session:
            if await session.get(StripeWebhookEvent, event.id) is not None:
                return None
        return await self._stripe.retrieve_subscription(subscription)

    async def _team_for(self, session: AsyncSession, obj: Mapping[str, Any]) -> str | None:
        customer = _str(obj.get("customer"))
        if customer is not None:
            team = await session.scalar(
                select(BillingCustomer.team_id).where(
                    BillingCustomer.stripe_customer_id == customer
                )
            )
            if team is not None:
                return team
        team = _metadata(obj).get("team_id") or obj.get("client_reference_id")
        return team if isinstance(team, str) and team else None

    def _plan_for(self, subscription: Mapping[str, Any]) -> Plan | None:
        plan_id = _metadata(subscription).get("plan_id")
        if isinstance(plan_id, str) and self._plans.get(plan_id) is not None:
            return self._plans.get(plan_id)
        items = subscription.get("items")
        prices: list[Any] = [subscription.get("plan")]
        if isinstance(items, dict) and isinstance(items.get("data"), list):
            for item in items["data"]:
                if isinstance(item, dict):
                    prices += [item.get("price"), item.get("plan")]
        for price in prices:
            price_id = _str(price)
            if price_id is not None and (plan := self._plans.by_stripe_price(price_id)):
                return plan
        return None

    # -- handlers ------------------------------------------------------------------

    async def _checkout_completed(
        self, session: AsyncSession, event: StripeEvent, fetched: dict[str, Any] | None
    ) -> None:
        checkout = event.data.object
        team = checkout.get("client_reference_id") or _metadata(checkout).get("team_id")
        customer = _str(checkout.get("customer"))
        if not isinstance(team, str) or customer is None:
            log.warning("checkout without a team or customer ignored", event_id=event.id)
            return
        known = await session.get(BillingCustomer, team)
        if known is None:
            session.add(
                BillingCustomer(
                    team_id=team, stripe_customer_id=customer, created_at=datetime.now(UTC)
                )
            )
            await session.flush()
        subscription = checkout.get("subscription")
        if fetched is not None:
            # Read just now: newer than any event created before this moment.
            await self._apply_subscription(session, event.id, fetched, int(time.time()), 1)
        elif isinstance(subscription, dict):
            await self._apply_subscription(
                session, event.id, subscription, event.created, RANK_UPDATED
            )

    async def _subscription_changed(
        self, session: AsyncSession, event: StripeEvent, _: dict[str, Any] | None
    ) -> None:
        rank = {
            "customer.subscription.created": RANK_CREATED,
            "customer.subscription.deleted": RANK_DELETED,
        }.get(event.type, RANK_UPDATED)
        await self._apply_subscription(session, event.id, event.data.object, event.created, rank)

    async def _apply_subscription(
        self,
        session: AsyncSession,
        event_id: str,
        subscription: Mapping[str, Any],
        created: int,
        rank: int,
    ) -> None:
        subscription_id = _str(subscription.get("id"))
        team = await self._team_for(session, subscription)
        plan = self._plan_for(subscription)
        customer = _str(subscription.get("customer")) or ""
        status = subscription.get("status")
        if subscription_id is None or not isinstance(status, str):
            log.warning("subscription without id or status ignored", event_id=event_id)
            return
        if team is None or plan is None:
            log.warning(
                "subscription of an unknown customer or plan ignored",
                event_id=event_id,
                subscription_id=subscription_id,
                customer=customer,
            )
            return
        if rank == RANK_DELETED:
            status = "canceled"
        row = await session.get(BillingSubscription, subscription_id, with_for_update=True)
        if row is not None and (row.state_created, row.state_rank) > (created, rank):
            log.info("older subscription state ignored", subscription_id=subscription_id)
            return
        period_end = _ts(subscription.get("current_period_end"))
        if period_end is None:  # newer API versions keep the period on the items
            items = subscription.get("items")
            data = items.get("data") if isinstance(items, dict) else None
            if isinstance(data, list) and data and isinstance(data[0], dict):
                period_end = _ts(data[0].get("current_period_end"))
        canceled_at = _ts(subscription.get("ended_at")) or _ts(subscription.get("canceled_at"))
        cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
        before = (
            None
            if row is None
            else (row.plan_id, row.status, row.current_period_end, row.cancel_at_period_end)
        )
        previous_status = None if row is None else row.status
        if row is None:
            row = BillingSubscription(id=subscription_id)
            session.add(row)
        row.team_id = team
        row.stripe_customer_id = customer
        row.plan_id = plan.id
        row.status = status
        row.current_period_end = period_end
        row.cancel_at_period_end = cancel_at_period_end
        row.canceled_at = canceled_at if status in ENDED else None
        row.state_created, row.state_rank = created, rank
        row.updated_at = datetime.now(UTC)
        after = (plan.id, status, period_end, cancel_at_period_end)
        if status in ENDED:
            if previous_status not in ENDED:
                add_event(
                    session,
                    SubscriptionCanceled(
                        team_id=team,
                        subscription_id=subscription_id,
                        plan_id=plan.id,
                        canceled_at=canceled_at or datetime.now(UTC),
                        entitlements=self._plans.default.entitlements.model_dump(mode="json"),
                    ),
                )
            return
        fields = {
            "team_id": team,
            "subscription_id": subscription_id,
            "plan_id": plan.id,
            "status": status,
            "current_period_end": period_end or datetime.now(UTC),
            "entitlements": plan.entitlements.model_dump(mode="json"),
        }
        if status in ENTITLED and previous_status not in ENTITLED:
            add_event(session, SubscriptionActivated(**fields))
        elif before != after:
            add_event(session, SubscriptionUpdated(**fields))

    async def _invoice(
        self, session: AsyncSession, invoice: Mapping[str, Any], event_id: str
    ) -> BillingInvoice | None:
        invoice_id = _str(invoice.get("id"))
        subscription_id = _str(invoice.get("subscription"))
        parent = invoice.get("parent")
        if subscription_id is None and isinstance(parent, dict):
            details = parent.get("subscription_details")
            if isinstance(details, dict):
                subscription_id = _str(details.get("subscription"))
        team = await self._team_for(session, invoice)
        if team is None and subscription_id is not None:
            team = await session.scalar(
                select(BillingSubscription.team_id).where(BillingSubscription.id == subscription_id)
            )
        if invoice_id is None or team is None:
            log.warning("invoice of an unknown customer ignored", event_id=event_id)
            return None
        row = await session.get(BillingInvoice, invoice_id, with_for_update=True)
        if row is None:
            row = BillingInvoice(id=invoice_id, team_id=team, status="open", failed_attempts=0)
            session.add(row)
        row.subscription_id = subscription_id
        row.currency = str(invoice.get("currency") or "usd")
        return row

    async def _invoice_paid(
        self, session: AsyncSession, event: StripeEvent, _: dict[str, Any] | None
    ) -> None:
        invoice = event.data.object
        row = await self._invoice(session, invoice, event.id)
        if row is None:
            return
        if row.status == "paid":
            return  # invoice.paid and invoice.payment_succeeded, or a redelivery: once
        row.status = "paid"
        row.paid_at = _ts((invoice.get("status_transitions") or {}).get("paid_at")) or (
            datetime.now(UTC)
        )
        row.amount_cents = int(invoice.get("amount_paid") or invoice.get("total") or 0)
        add_event(
            session,
            InvoicePaid(
                team_id=row.team_id,
                invoice_id=row.id,
                amount_cents=row.amount_cents,
                currency=row.currency,
            ),
        )

    async def _invoice_failed(
        self, session: AsyncSession, event: StripeEvent, _: dict[str, Any] | None
    ) -> None:
        invoice = event.data.object
        row = await self._invoice(session, invoice, event.id)
        if row is None:
            return
        attempt = int(invoice.get("attempt_count") or row.failed_attempts + 1)
        row.amount_cents = int(invoice.get("amount_due") or invoice.get("total") or 0)
        if row.status == "paid" or attempt <= row.failed_attempts:
            return  # a late or repeated failure report
        row.failed_attempts = attempt
        row.status = "open"
        add_event(
            session,
            PaymentFailed(
                team_id=row.team_id,
                invoice_id=row.id,
                amount_cents=row.amount_cents,
                currency=row.currency,
                attempt=attempt,
            ),
        )
        # The notification itself: notifications reacts to payment.failed (no second request).
        await self._mark_past_due(session, row, event)

    async def _mark_past_due(
        self, session: AsyncSession, invoice: BillingInvoice, event: StripeEvent
    ) -> None:
        if invoice.subscription_id is None:
            return
        row = await session.get(BillingSubscription, invoice.subscription_id, with_for_update=True)
        if row is None or row.status not in ("active", "trialing"):
            return
        if (row.state_created, row.state_rank) > (event.created, RANK_UPDATED):
            return
        row.status = "past_due"
        row.state_created, row.state_rank = event.created, RANK_UPDATED
        row.updated_at = datetime.now(UTC)
        add_event(
            session,
            SubscriptionUpdated(
                team_id=row.team_id,
                subscription_id=row.id,
                plan_id=row.plan_id,
                status=row.status,
                current_period_end=row.current_period_end or datetime.now(UTC),
                entitlements=self._entitlements_of(row.plan_id),
            ),
        )


def encode_event(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()
