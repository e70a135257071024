"""The Stripe adapter: the official client, built once, with a configurable API base.

Never the module-level `stripe.api_key`: one `StripeClient` instance per process,
so tests and offline dev point it at local servers (localstripe, a stub).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import stripe
import structlog
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from events.metrics import external_call
from services.errors import BadUserInput, DomainError, RateLimited

log = structlog.get_logger(__name__)


class PaymentProviderError(DomainError):
    """Stripe could not be reached or refused our own request: not the caller's fault."""

    code = "INTERNAL"


@dataclass(frozen=True, slots=True)
class HostedSession:
    id: str
    url: str


# -- Stripe's objects, as billing reads them ------------------------------------------
# Parsed once, at this edge, from the verified webhook body (or a retrieved object):
# billing's code reads typed fields, never `dict.get`. Only the fields billing uses are
# declared; Stripe's others are ignored, so a new API version's additions change nothing.


def _expandable_id(value: Any) -> Any:
    """Stripe's expandable fields are an id, or the object itself when expanded."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None  # "" is no id


ExpandableId = Annotated[str | None, BeforeValidator(_expandable_id)]


def _timestamp(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class StripeObject(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SubscriptionItem(StripeObject):
    price: ExpandableId = None
    plan: ExpandableId = None  # the legacy Plans API names the price here
    current_period_end: int | None = None  # newer API versions keep the period here


class SubscriptionItems(StripeObject):
    data: tuple[SubscriptionItem, ...] = ()


class Subscription(StripeObject):
    """A Stripe subscription (`customer.subscription.*`, or expanded in a checkout)."""

    id: str = Field(min_length=1)
    status: str = Field(min_length=1)
    customer: ExpandableId = None
    metadata: dict[str, str] = Field(default_factory=dict)
    plan: ExpandableId = None
    items: SubscriptionItems = SubscriptionItems()
    current_period_end: int | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    ended_at: int | None = None

    @property
    def period_end(self) -> datetime | None:
        """The current period's end, wherever this API version keeps it."""
        if self.current_period_end is not None:
            return _timestamp(self.current_period_end)
        return _timestamp(self.items.data[0].current_period_end) if self.items.data else None

    @property
    def ended(self) -> datetime | None:
        return _timestamp(self.ended_at) or _timestamp(self.canceled_at)

    @property
    def price_ids(self) -> list[str]:
        """Every price (or legacy plan) id the subscription names, in order."""
        ids = [self.plan, *(i for item in self.items.data for i in (item.price, item.plan))]
        return [i for i in ids if i is not None]


class CheckoutSession(StripeObject):
    """A completed Checkout Session: its team, customer and subscription."""

    id: str = Field(min_length=1)
    client_reference_id: str | None = None
    customer: ExpandableId = None
    metadata: dict[str, str] = Field(default_factory=dict)
    # An id, or the subscription itself (expanded, as the offline test checkout sends it).
    subscription: Subscription | str | None = None


class _SubscriptionDetails(StripeObject):
    subscription: ExpandableId = None


class _InvoiceParent(StripeObject):
    subscription_details: _SubscriptionDetails | None = None


class _StatusTransitions(StripeObject):
    paid_at: int | None = None


class Invoice(StripeObject):
    """A Stripe invoice (`invoice.paid`, `invoice.payment_succeeded`, `..._failed`)."""

    id: str = Field(min_length=1)
    customer: ExpandableId = None
    subscription: ExpandableId = None
    parent: _InvoiceParent | None = None  # newer API versions name the subscription here
    metadata: dict[str, str] = Field(default_factory=dict)
    currency: str = "usd"
    amount_paid: int | None = None
    amount_due: int | None = None
    total: int | None = None
    attempt_count: int | None = None
    status_transitions: _StatusTransitions = _StatusTransitions()

    @property
    def subscription_id(self) -> str | None:
        if self.subscription is not None:
            return self.subscription
        details = self.parent.subscription_details if self.parent else None
        return details.subscription if details else None

    @property
    def paid_at(self) -> datetime | None:
        return _timestamp(self.status_transitions.paid_at)


class Customer(StripeObject):
    id: str = Field(min_length=1)
    metadata: dict[str, str] = Field(default_factory=dict)


class _EventData(StripeObject):
    object: dict[str, Any]


class StripeEvent(StripeObject):
    """Stripe's event envelope; `data.object` is parsed by the event's type."""

    id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    created: int
    data: _EventData


def _mapped(error: stripe.StripeError) -> DomainError:
    log.warning("stripe request failed", error=type(error).__name__, message=error.user_message)
    if isinstance(error, stripe.RateLimitError):
        return RateLimited("the payment provider is rate limiting requests; retry shortly")
    if isinstance(error, stripe.CardError):
        return BadUserInput(error.user_message or "the card was declined")
    if isinstance(error, stripe.InvalidRequestError):
        return PaymentProviderError(
            "the payment provider refused the request", provider_code=error.code
        )
    return PaymentProviderError("the payment provider is unavailable; retry shortly")


class StripeGateway:
    """The calls billing makes to Stripe, each with an idempotency key."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        timeout_s: float = 20.0,
        max_network_retries: int = 2,
    ) -> None:
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=stripe.HTTPXClient(timeout=timeout_s),
            max_network_retries=max_network_retries,
        )

    async def create_customer(self, team_id: str) -> str:
        # Keyed on the team: two concurrent first checkouts get the same customer.
        try:
            with external_call("stripe"):
                created = await self.client.v1.customers.create_async(
                    params={"metadata": {"team_id": team_id}},
                    options={"idempotency_key": f"haunted-customer-{team_id}"},
                )
        except stripe.StripeError as error:
            raise _mapped(error) from error
        return Customer.model_validate(created.to_dict()).id

    async def create_checkout_session(
        self,
        *,
        customer_id: str,
        team_id: str,
        plan_id: str,
        price_id: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> HostedSession:
        metadata = {"team_id": team_id, "plan_id": plan_id}
        try:
            with external_call("stripe"):
                session = await self.client.v1.checkout.sessions.create_async(
                    params={
                        "mode": "subscription",
                        "customer": customer_id,
                        "client_reference_id": team_id,
                        "line_items": [{"price": price_id, "quantity": 1}],
                        "success_url": success_url,
                        "cancel_url": cancel_url,
                        "metadata": metadata,
                        "subscription_data": {"metadata": metadata},
                    },
                    options={"idempotency_key": idempotency_key},
                )
        except stripe.StripeError as error:
            raise _mapped(error) from error
        return HostedSession(str(session.id), str(session.url))

    async def create_portal_session(self, customer_id: str, return_url: str) -> HostedSession:
        try:
            with external_call("stripe"):
                session = await self.client.v1.billing_portal.sessions.create_async(
                    params={"customer": customer_id, "return_url": return_url}
                )
        except stripe.StripeError as error:
            raise _mapped(error) from error
        return HostedSession(str(session.id), str(session.url))

    async def retrieve_subscription(self, subscription_id: str) -> Subscription:
        """The subscription as Stripe has it now (raises StripeError: webhook retries)."""
        with external_call("stripe"):
            subscription = await self.client.v1.subscriptions.retrieve_async(subscription_id)
        return Subscription.model_validate(subscription.to_dict())
