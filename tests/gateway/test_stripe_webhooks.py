"""POST /webhooks/stripe over HTTP, the offline test checkout, and localstripe end to end."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from events.db import Database
from haunted.settings import Settings
from services.billing import LOCAL_WEBHOOK_SECRET, sign_payload
from services.billing.models import BillingSubscription
from tests.conftest import Server, eventually, free_port, register
from tests.services.billing.conftest import (
    count,
    link_customer,
    new_id,
    outbox_topics,
    processed_events,
    signed,
    stripe_event,
    subscription,
)

CHECKOUT = "mutation($plan: ID!) { createCheckoutSession(planId: $plan) { id url } }"
MY_SUBSCRIPTION = """{ mySubscription { id status cancelAtPeriodEnd
  plan { id name priceCents entitlements { llmTokensPerMonth seats features } }
  entitlements { seats } } }"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Without Stripe, the offline test checkout: dev, and asked for."""
    return settings.model_copy(update={"env": "dev", "billing_local_checkout": True})


async def post_webhook(server: Server, payload: bytes, header: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if header is not None:
        headers["Stripe-Signature"] = header
    async with server.client() as client:
        return await client.post("/webhooks/stripe", content=payload, headers=headers)


async def test_refused_webhooks_answer_400_and_write_nothing(server: Server) -> None:
    db = server.haunted.db
    event = stripe_event("customer.subscription.created", subscription(new_id("sub"), "cus_x"))
    payload, good = signed(event)
    cases = {
        "bad signature": (payload, signed(event, secret="whsec_other")[1]),
        "stale timestamp": signed(event, at=int(time.time()) - 3600),
        "no signature": (payload, None),
        "malformed": (b"{not json", sign_payload(b"{not json", LOCAL_WEBHOOK_SECRET)),
        "wrong shape": signed(
            stripe_event("customer.subscription.created", {"id": new_id("sub"), "status": 1})
        ),
        "oversized": (b"{" + b" " * (600 * 1024) + b"}", good),
    }
    for name, (body, header) in cases.items():
        response = await post_webhook(server, body, header)
        assert response.status_code == 400, name
        assert "error" in response.json(), name
    assert await processed_events(db) == 0

    accepted = await post_webhook(server, payload, good)
    assert accepted.status_code == 200
    assert await processed_events(db) == 1


async def test_plans_are_public_and_billing_needs_permissions(server: Server) -> None:
    body = await server.graphql(
        "{ plans { id name priceCents currency interval isDefault entitlements { seats } } }"
    )
    plans = {plan["id"]: plan for plan in body["data"]["plans"]}
    assert plans["free"]["isDefault"] and plans["pro"]["priceCents"] == 2900
    assert plans["team"]["entitlements"]["seats"] == 100

    anonymous = await server.graphql(MY_SUBSCRIPTION)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    owner = await register(server)
    other_team = "team_not_mine"
    denied = await server.graphql(
        'mutation($t: ID) { createCheckoutSession(planId: "pro", teamId: $t) { id } }',
        {"t": other_team},
        owner["token"],
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    unknown = await server.graphql(CHECKOUT, {"plan": "platinum"}, owner["token"])
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    none_yet = await server.graphql(MY_SUBSCRIPTION, token=owner["token"])
    assert none_yet == {"data": {"mySubscription": None}}


async def test_offline_checkout_activates_the_subscription_through_the_webhook(
    server: Server,
) -> None:
    owner = await register(server)
    token = owner["token"]
    body = await server.graphql(CHECKOUT, {"plan": "pro"}, token)
    url = body["data"]["createCheckoutSession"]["url"]
    assert "/billing/test-checkout/" in url

    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(url)
        assert page.status_code == 200 and "development only" in page.text
        confirmed = await client.post(url)
        # Back to the web app's billing page, as after Stripe's checkout.
        assert confirmed.status_code == 303, confirmed.text
        web = server.haunted.settings.web_url
        assert confirmed.headers["location"] == f"{web}/app/billing?checkout=success"
        again = await client.post(url)
        assert again.status_code == 409

    mine = (await server.graphql(MY_SUBSCRIPTION, token=token))["data"]["mySubscription"]
    assert mine["status"] == "active" and mine["plan"]["id"] == "pro"
    assert mine["plan"]["entitlements"]["llmTokensPerMonth"] == 5_000_000
    assert mine["entitlements"]["seats"] == 20
    assert await outbox_topics(server.haunted.db) == ["subscription.activated"]
    second = await server.graphql(CHECKOUT, {"plan": "team"}, token)
    assert second["errors"][0]["extensions"]["code"] == "CONFLICT", second


# -- localstripe ----------------------------------------------------------------------

WEBHOOK_SECRET = "whsec_localstripe_test"


@pytest.fixture
async def localstripe(tmp_path: Path) -> AsyncIterator[str]:
    binary = shutil.which("localstripe") or str(Path(sys.executable).parent / "localstripe")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        binary,
        "--port",
        str(port),
        "--from-scratch",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        try:
            async with httpx.AsyncClient() as client:
                await client.get(f"{url}/v1/customers", auth=("sk_test_x", ""))
        except httpx.TransportError:
            return False
        return True

    try:
        await eventually(up)
        yield url
    finally:
        process.terminate()
        await process.wait()


@pytest.fixture
async def stripe_server(settings: Settings, localstripe: str) -> AsyncIterator[Server]:
    from tests.conftest import server as server_fixture  # the same server, Stripe configured

    configured = settings.model_copy(
        update={
            "stripe_api_key": stripe_secret("sk_test_localstripe"),
            "stripe_webhook_secret": stripe_secret(WEBHOOK_SECRET),
            "stripe_api_base": localstripe,
        }
    )
    async for running in server_fixture.__wrapped__(configured):  # type: ignore[attr-defined]
        yield running


def stripe_secret(value: str) -> SecretStr:
    return SecretStr(value)


async def test_localstripe_subscription_lifecycle_reaches_the_gateway(
    stripe_server: Server, localstripe: str
) -> None:
    server = stripe_server
    owner = await register(server)
    team = owner["user"]["memberships"][0]["team"]["id"]
    async with httpx.AsyncClient() as http:
        hook = await http.post(
            f"{localstripe}/_config/webhooks/haunted",
            data={"url": f"{server.url}/webhooks/stripe", "secret": WEBHOOK_SECRET},
        )
        assert hook.status_code == 200
    gateway = server.haunted.services.billing._stripe
    assert gateway is not None
    client = gateway.client  # the same StripeClient the service uses
    await client.v1.products.create_async(params={"name": "Pro", "id": "prod_pro"})
    await client.v1.plans.create_async(
        params={
            "id": "price_pro_monthly_test",
            "amount": 2900,
            "currency": "usd",
            "interval": "month",
            "product": "prod_pro",
        }
    )
    customer = await gateway.create_customer(team)
    await link_customer(server.haunted.db, team, customer)
    card = await client.v1.payment_methods.create_async(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    await client.v1.payment_methods.attach_async(card.id, params={"customer": customer})
    await client.v1.customers.update_async(
        customer, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    created = await client.v1.subscriptions.create_async(
        params={"customer": customer, "items": [{"plan": "price_pro_monthly_test"}]}
    )

    db: Database = server.haunted.db

    async def activated_and_paid() -> bool:
        topics = await outbox_topics(db)
        return "subscription.activated" in topics and "invoice.paid" in topics

    await eventually(activated_and_paid)
    mine = (await server.graphql(MY_SUBSCRIPTION, token=owner["token"]))["data"]["mySubscription"]
    assert mine["id"] == created.id and mine["plan"]["id"] == "pro"

    await client.v1.subscriptions.cancel_async(created.id)

    async def canceled() -> bool:
        return "subscription.canceled" in await outbox_topics(db)

    await eventually(canceled)
    assert (await server.graphql(MY_SUBSCRIPTION, token=owner["token"]))["data"] == {
        "mySubscription": None
    }
    assert await count(db, BillingSubscription) == 1
    assert (await outbox_topics(db)).count("invoice.paid") == 1
