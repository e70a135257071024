"""The Stripe adapter: the official client, built once, with a configurable API base.

Never the module-level `stripe.api_key`: one `StripeClient` instance per process,
so tests and offline dev point it at local servers (localstripe, a stub).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe
import structlog

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
                customer = await self.client.v1.customers.create_async(
                    params={"metadata": {"team_id": team_id}},
                    options={"idempotency_key": f"haunted-customer-{team_id}"},
                )
        except stripe.StripeError as error:
            raise _mapped(error) from error
        return str(customer.id)

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

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """The subscription as Stripe has it now (raises StripeError: webhook retries)."""
        with external_call("stripe"):
            subscription = await self.client.v1.subscriptions.retrieve_async(subscription_id)
        return subscription.to_dict()
