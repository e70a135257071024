"""Stripe webhooks: verified first, each event id once, order-independent, outbox events.

Idempotency: the event id's row commits in the same transaction as the event's
effects and its outbox events, so a redelivery (or a concurrent duplicate, which
waits on the primary key, then inserts nothing) changes nothing. Ordering: a subscription
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
from pydantic import ValidationError
from sqlalchemy import Table, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from events.db import Database
from events.dialect import insert_ignore
from events.outbox import add_event
from schemas import (
    Entitlements,
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
from services.billing.stripe import (
    CheckoutSession,
    Invoice,
    StripeEvent,
    StripeGateway,
    StripeObject,
    Subscription,
)

log = structlog.get_logger(__name__)

# States in which the plan's entitlements apply (past_due: a grace period while Stripe retries).
ENTITLED = frozenset({"active", "trialing", "past_due"})
ENDED = frozenset({"canceled", "incomplete_expired"})
# Same-second events order by what they mean: created < updated < deleted.
RANK_CREATED, RANK_UPDATED, RANK_DELETED = 0, 1, 2


class InvalidWebhook(Exception):
    """Not a genuine, well-formed Stripe event: answered 400, nothing written."""


SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
INVOICE_EVENTS = frozenset({"invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"})
CHECKOUT_COMPLETED = "checkout.session.completed"
# The object each handled event type carries; any other type is acknowledged unread.
_OBJECTS: dict[str, type[StripeObject]] = {
    **dict.fromkeys(SUBSCRIPTION_EVENTS, Subscription),
    **dict.fromkeys(INVOICE_EVENTS, Invoice),
    CHECKOUT_COMPLETED: CheckoutSession,
}


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """A genuine Stripe event and its object, typed by the event's type (None: a type
    billing does not handle)."""

    id: str
    type: str
    created: int
    object: StripeObject | None


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    status: Literal["processed", "duplicate", "ignored"]
    event_id: str
    type: str


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{where}: {first['msg']}"


def verify_event(
    payload: bytes, signature: str | None, secret: str, tolerance_s: int
) -> VerifiedEvent:
    """Checks the signature and timestamp before anything else is read, then parses
    the envelope and its object by type: a wrong shape is refused here, before any write.

    `WebhookSignature.verify_header` is the check `Webhook.construct_event` runs; the
    body is then parsed once, into billing's own models, instead of a second time into
    a `StripeObject` tree that billing would not read.
    """
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, tolerance_s)
    except stripe.SignatureVerificationError as error:
        raise InvalidWebhook(f"signature verification failed: {error.user_message}") from None
    except UnicodeDecodeError:
        raise InvalidWebhook("the body is not UTF-8") from None
    try:
        envelope = StripeEvent.model_validate_json(payload)
    except ValidationError as error:
        raise InvalidWebhook(f"the body is not a Stripe event ({_first_error(error)})") from None
    model = _OBJECTS.get(envelope.type)
    if model is None:
        return VerifiedEvent(envelope.id, envelope.type, envelope.created, None)
    try:
        obj = model.model_validate(envelope.data.object)
    except ValidationError as error:
        raise InvalidWebhook(
            f"{envelope.type}: data.object is not a Stripe {model.__name__} ({_first_error(error)})"
        ) from None
    return VerifiedEvent(envelope.id, envelope.type, envelope.created, obj)


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header, by Stripe's documented scheme (local checkout, tests)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _Duplicate(Exception):
    pass


STRIPE_EVENTS: Table = StripeWebhookEvent.__table__  # type: ignore[assignment]


Handler = Callable[[AsyncSession, VerifiedEvent, "Subscription | None"], Awaitable[None]]


class WebhookProcessor:
    """Applies verified Stripe events to billing's tables and outbox."""

    def __init__(self, db: Database, plans: PlanCatalog, stripe_gateway: StripeGateway | None):
        self._db = db
        self._plans = plans
        self._stripe = stripe_gateway
        self._handlers: dict[str, Handler] = {
            CHECKOUT_COMPLETED: self._checkout_completed,
            **dict.fromkeys(SUBSCRIPTION_EVENTS, self._subscription_changed),
            "invoice.paid": self._invoice_paid,
            "invoice.payment_succeeded": self._invoice_paid,
            "invoice.payment_failed": self._invoice_failed,
        }

    def _entitlements_of(self, plan_id: str) -> Entitlements:
        plan = self._plans.get(plan_id) or self._plans.default
        return plan.entitlements.for_event()

    @property
    def handled_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    async def process(self, event: VerifiedEvent) -> WebhookOutcome:
        handler = self._handlers.get(event.type)
        if handler is None:
            log.info("stripe event type ignored", event_id=event.id, type=event.type)
            return WebhookOutcome("ignored", event.id, event.type)
        fetched = await self._fetch(event)  # network first: never inside a transaction
        for attempt in (1, 2):
            try:
                async with self._db.transaction() as session:
                    # A concurrent twin waits here for this one's commit, then inserts
                    # nothing: one statement, no error to recover from.
                    stored = await insert_ignore(
                        session,
                        STRIPE_EVENTS,
                        [
                            {
                                "id": event.id,
                                "type": event.type,
                                "created": event.created,
                                "received_at": datetime.now(UTC),
                            }
                        ],
                        conflict=["id"],
                    )
                    if not stored:
                        raise _Duplicate
                    await handler(session, event, fetched)
            except _Duplicate:
                log.info("stripe event already processed", event_id=event.id, type=event.type)
                return WebhookOutcome("duplicate", event.id, event.type)
            except IntegrityError:
                # Two events of one new subscription (or invoice), applied at once: both
                # found no row, one inserted it first. Again, the row is there now.
                if attempt == 2:
                    raise
                log.info("stripe event raced its twin; applying again", event_id=event.id)
                continue
            break
        return WebhookOutcome("processed", event.id, event.type)

    async def _fetch(self, event: VerifiedEvent) -> Subscription | None:
        """checkout.session.completed names its subscription: read it from Stripe."""
        if not isinstance(event.object, CheckoutSession) or self._stripe is None:
            return None
        subscription = event.object.subscription
        if not isinstance(subscription, str):
            return None
        async with self._db.read() as session:
            if await session.get(StripeWebhookEvent, event.id) is not None:
                return None
        return await self._stripe.retrieve_subscription(subscription)

    async def _team_for(
        self, session: AsyncSession, customer: str | None, metadata: Mapping[str, str]
    ) -> str | None:
        if customer is not None:
            team = await session.scalar(
                select(BillingCustomer.team_id).where(
                    BillingCustomer.stripe_customer_id == customer
                )
            )
            if team is not None:
                return team
        return metadata.get("team_id") or None

    def _plan_for(self, subscription: Subscription) -> Plan | None:
        plan = self._plans.get(subscription.metadata.get("plan_id", ""))
        if plan is not None:
            return plan
        for price_id in subscription.price_ids:
            if plan := self._plans.by_stripe_price(price_id):
                return plan
        return None

    # -- handlers ------------------------------------------------------------------

    async def _checkout_completed(
        self, session: AsyncSession, event: VerifiedEvent, fetched: Subscription | None
    ) -> None:
        checkout = event.object
        assert isinstance(checkout, CheckoutSession)  # verify_event parsed it by type
        team = checkout.client_reference_id or checkout.metadata.get("team_id")
        if not team or checkout.customer is None:
            log.warning("checkout without a team or customer ignored", event_id=event.id)
            return
        known = await session.get(BillingCustomer, team)
        if known is None:
            session.add(
                BillingCustomer(
                    team_id=team, stripe_customer_id=checkout.customer, created_at=datetime.now(UTC)
                )
            )
            await session.flush()
        if fetched is not None:
            # Read just now: newer than any event created before this moment.
            await self._apply_subscription(session, event.id, fetched, int(time.time()), 1)
        elif isinstance(checkout.subscription, Subscription):
            await self._apply_subscription(
                session, event.id, checkout.subscription, event.created, RANK_UPDATED
            )

    async def _subscription_changed(
        self, session: AsyncSession, event: VerifiedEvent, _: Subscription | None
    ) -> None:
        assert isinstance(event.object, Subscription)  # verify_event parsed it by type
        rank = {
            "customer.subscription.created": RANK_CREATED,
            "customer.subscription.deleted": RANK_DELETED,
        }.get(event.type, RANK_UPDATED)
        await self._apply_subscription(session, event.id, event.object, event.created, rank)

    async def _apply_subscription(
        self,
        session: AsyncSession,
        event_id: str,
        subscription: Subscription,
        created: int,
        rank: int,
    ) -> None:
        row = await session.get(BillingSubscription, subscription.id, with_for_update=True)
        # A subscription stays with its team: known once its row is there.
        team = (
            row.team_id
            if row is not None
            else await self._team_for(session, subscription.customer, subscription.metadata)
        )
        plan = self._plan_for(subscription)
        if team is None or plan is None:
            log.warning(
                "subscription of an unknown customer or plan ignored",
                event_id=event_id,
                subscription_id=subscription.id,
                customer=subscription.customer,
            )
            return
        status = "canceled" if rank == RANK_DELETED else subscription.status
        if row is not None and (row.state_created, row.state_rank) > (created, rank):
            log.info("older subscription state ignored", subscription_id=subscription.id)
            return
        period_end = subscription.period_end
        before = (
            None
            if row is None
            else (row.plan_id, row.status, row.current_period_end, row.cancel_at_period_end)
        )
        previous_status = None if row is None else row.status
        if row is None:
            row = BillingSubscription(id=subscription.id)
            session.add(row)
        row.team_id = team
        row.stripe_customer_id = subscription.customer or ""
        row.plan_id = plan.id
        row.status = status
        row.current_period_end = period_end
        row.cancel_at_period_end = subscription.cancel_at_period_end
        row.canceled_at = subscription.ended if status in ENDED else None
        row.state_created, row.state_rank = created, rank
        row.updated_at = datetime.now(UTC)
        after = (plan.id, status, period_end, subscription.cancel_at_period_end)
        if status in ENDED:
            if previous_status not in ENDED:
                add_event(
                    session,
                    SubscriptionCanceled(
                        team_id=team,
                        subscription_id=subscription.id,
                        plan_id=plan.id,
                        canceled_at=subscription.ended or datetime.now(UTC),
                        entitlements=self._plans.default.entitlements.for_event(),
                    ),
                )
            return
        fields = {
            "team_id": team,
            "subscription_id": subscription.id,
            "plan_id": plan.id,
            "status": status,
            "current_period_end": period_end or datetime.now(UTC),
            "entitlements": plan.entitlements.for_event(),
        }
        if status in ENTITLED and previous_status not in ENTITLED:
            add_event(session, SubscriptionActivated(**fields))
        elif before != after:
            add_event(session, SubscriptionUpdated(**fields))

    async def _invoice(
        self, session: AsyncSession, invoice: Invoice, event_id: str
    ) -> BillingInvoice | None:
        subscription_id = invoice.subscription_id
        row = await session.get(BillingInvoice, invoice.id, with_for_update=True)
        if row is None:
            # An invoice stays with its team: looked up for its first event only
            # (`invoice.paid`'s twin `invoice.payment_succeeded` skips it).
            team = await self._team_for(session, invoice.customer, invoice.metadata)
            if team is None and subscription_id is not None:
                team = await session.scalar(
                    select(BillingSubscription.team_id).where(
                        BillingSubscription.id == subscription_id
                    )
                )
            if team is None:
                log.warning("invoice of an unknown customer ignored", event_id=event_id)
                return None
            row = BillingInvoice(id=invoice.id, team_id=team, status="open", failed_attempts=0)
            session.add(row)
        row.subscription_id = subscription_id
        row.currency = invoice.currency or "usd"
        return row

    async def _invoice_paid(
        self, session: AsyncSession, event: VerifiedEvent, _: Subscription | None
    ) -> None:
        invoice = event.object
        assert isinstance(invoice, Invoice)  # verify_event parsed it by type
        row = await self._invoice(session, invoice, event.id)
        if row is None:
            return
        if row.status == "paid":
            return  # invoice.paid and invoice.payment_succeeded, or a redelivery: once
        row.status = "paid"
        row.paid_at = invoice.paid_at or datetime.now(UTC)
        row.amount_cents = invoice.amount_paid or invoice.total or 0
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
        self, session: AsyncSession, event: VerifiedEvent, _: Subscription | None
    ) -> None:
        invoice = event.object
        assert isinstance(invoice, Invoice)  # verify_event parsed it by type
        row = await self._invoice(session, invoice, event.id)
        if row is None:
            return
        attempt = invoice.attempt_count or row.failed_attempts + 1
        row.amount_cents = invoice.amount_due or invoice.total or 0
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
        self, session: AsyncSession, invoice: BillingInvoice, event: VerifiedEvent
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
