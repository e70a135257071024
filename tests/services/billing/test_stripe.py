"""services/billing/stripe.py and checkout: the real stripe client against a local stub.

localstripe has no Checkout Sessions, so this stub serves the endpoints checkout
uses with responses in Stripe's API shape (fields as documented for
`POST /v1/customers` and `POST /v1/checkout/sessions`), reached by the real
`stripe.StripeClient` through its API base URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from pydantic import SecretStr

from haunted.runtime import Haunted
from haunted.settings import Settings
from services.billing import PaymentProviderError, StripeGateway
from services.errors import Conflict, Forbidden, RateLimited
from services.principal import Principal
from tests.conftest import free_port
from tests.services.billing.conftest import link_customer, new_id


@dataclass
class StripeStub:
    url: str
    requests: list[tuple[str, dict[str, str], str | None]] = field(default_factory=list)
    fail_with: tuple[int, dict[str, Any]] | None = None

    def bodies(self, path: str) -> list[dict[str, str]]:
        return [body for p, body, _ in self.requests if p == path]

    def keys(self, path: str) -> list[str | None]:
        return [key for p, _, key in self.requests if p == path]


@pytest.fixture
async def stripe_stub() -> AsyncIterator[StripeStub]:
    port = free_port()
    stub = StripeStub(f"http://127.0.0.1:{port}")
    customers: dict[str, str] = {}  # idempotency key -> customer id, as Stripe replays

    async def record(request: web.Request) -> dict[str, str]:
        body = dict(parse_qsl(await request.text()))
        stub.requests.append((request.path, body, request.headers.get("Idempotency-Key")))
        return body

    async def create_customer(request: web.Request) -> web.Response:
        await record(request)
        key = request.headers.get("Idempotency-Key") or new_id("key")
        customer = customers.setdefault(key, new_id("cus"))
        return web.json_response({"id": customer, "object": "customer", "metadata": {}})

    async def create_session(request: web.Request) -> web.Response:
        body = await record(request)
        if stub.fail_with is not None:
            status, error = stub.fail_with
            return web.json_response({"error": error}, status=status)
        session_id = new_id("cs_test")
        return web.json_response(
            {
                "id": session_id,
                "object": "checkout.session",
                "mode": body.get("mode"),
                "customer": body.get("customer"),
                "client_reference_id": body.get("client_reference_id"),
                "status": "open",
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            }
        )

    app = web.Application()
    app.router.add_post("/v1/customers", create_customer)
    app.router.add_post("/v1/checkout/sessions", create_session)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield stub
    await runner.cleanup()


@pytest.fixture
async def stripe_billing(settings: Settings, stripe_stub: StripeStub) -> AsyncIterator[Haunted]:
    configured = settings.model_copy(
        update={
            "stripe_api_key": SecretStr("sk_test_stub"),
            "stripe_webhook_secret": SecretStr("whsec_stub"),
            "stripe_api_base": stripe_stub.url,
        }
    )
    app = Haunted.build(configured)
    try:
        yield app
    finally:
        await app.redis.aclose()
        await app.db.dispose()


def owner_of(team: str) -> Principal:
    return Principal(new_id("user"), new_id("session"), {team: "owner"})


async def test_checkout_creates_one_customer_per_team_and_a_subscription_session(
    stripe_billing: Haunted, stripe_stub: StripeStub
) -> None:
    billing = stripe_billing.services.billing
    team = new_id("team")

    first = await billing.create_checkout_session(owner_of(team), "pro")
    second = await billing.create_checkout_session(owner_of(team), "pro")

    assert first.url.startswith("https://checkout.stripe.com/") and first.id != second.id
    assert len(stripe_stub.bodies("/v1/customers")) == 1  # stored, then reused
    sessions = stripe_stub.bodies("/v1/checkout/sessions")
    customer = sessions[0]["customer"]
    assert all(body["customer"] == customer for body in sessions)
    assert sessions[0]["mode"] == "subscription"
    assert sessions[0]["client_reference_id"] == team
    assert sessions[0]["line_items[0][price]"] == "price_pro_monthly_test"
    assert sessions[0]["metadata[team_id]"] == team
    assert sessions[0]["subscription_data[metadata][plan_id]"] == "pro"
    keys = stripe_stub.keys("/v1/checkout/sessions")
    assert len(set(keys)) == 2 and None not in keys  # one idempotency key per request


async def test_stripe_errors_map_to_clear_domain_errors(
    stripe_billing: Haunted, stripe_stub: StripeStub
) -> None:
    billing = stripe_billing.services.billing
    team = new_id("team")
    stripe_stub.fail_with = (400, {"type": "invalid_request_error", "message": "No such price"})
    with pytest.raises(PaymentProviderError):
        await billing.create_checkout_session(owner_of(team), "pro")
    gateway = StripeGateway("sk_test_stub", api_base=stripe_stub.url, max_network_retries=0)
    stripe_stub.fail_with = (429, {"type": "rate_limit_error", "message": "slow down"})
    with pytest.raises(RateLimited):
        await gateway.create_checkout_session(
            customer_id="cus_1",
            team_id=team,
            plan_id="pro",
            price_id="price_pro_monthly_test",
            success_url="http://x/ok",
            cancel_url="http://x/no",
            idempotency_key="k1",
        )


async def test_viewers_read_but_do_not_buy(facades: Haunted) -> None:
    billing = facades.services.billing
    team = new_id("team")
    viewer = Principal(new_id("user"), new_id("session"), {team: "viewer"})

    assert await billing.my_subscription(viewer) is None
    with pytest.raises(Forbidden):
        await billing.create_checkout_session(viewer, "pro")
    with pytest.raises(Forbidden):
        await billing.my_subscription(owner_of(new_id("team")), team_id=team)


async def test_a_team_with_a_live_subscription_cannot_check_out_again(facades: Haunted) -> None:
    from tests.services.billing.conftest import signed, stripe_event, subscription

    billing = facades.services.billing
    team, customer = new_id("team"), new_id("cus")
    await link_customer(facades.db, team, customer)
    event = stripe_event("customer.subscription.created", subscription(new_id("sub"), customer))
    await billing.handle_webhook(*signed(event))

    with pytest.raises(Conflict):
        await billing.create_checkout_session(owner_of(team), "team")
