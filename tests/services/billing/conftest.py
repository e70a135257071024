"""Helpers for billing tests: Stripe-shaped events, signed as Stripe signs them."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from events.db import Database
from events.outbox import OutboxRecord
from haunted.settings import Settings
from services.billing import LOCAL_WEBHOOK_SECRET, sign_payload
from services.billing.models import BillingCustomer, StripeWebhookEvent


def offline_checkout(settings: Settings) -> Settings:
    """Billing without Stripe runs on the offline test checkout: dev, and asked for."""
    return settings.model_copy(update={"env": "dev", "billing_local_checkout": True})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return offline_checkout(settings)


@pytest.fixture
def offline_settings(offline_settings: Settings) -> Settings:
    """The `facades` fixture's (no broker), with the same checkout."""
    return offline_checkout(offline_settings)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def stripe_event(
    type_: str, obj: dict[str, Any], *, created: int | None = None, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "type": type_,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "data": {"object": obj},
    }


def subscription(
    sub_id: str, customer: str, status: str = "active", price: str = "price_pro_monthly_test"
) -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": False,
        "current_period_end": int(time.time()) + 30 * 24 * 3600,
        "metadata": {},
        "items": {"object": "list", "data": [{"price": {"id": price}}]},
    }


def invoice(inv_id: str, customer: str, sub_id: str, attempt: int = 1) -> dict[str, Any]:
    return {
        "id": inv_id,
        "object": "invoice",
        "customer": customer,
        "subscription": sub_id,
        "amount_paid": 2900,
        "amount_due": 2900,
        "currency": "usd",
        "attempt_count": attempt,
    }


def signed(event: dict[str, Any], *, secret: str = LOCAL_WEBHOOK_SECRET, at: int | None = None):
    payload = json.dumps(event).encode()
    return payload, sign_payload(payload, secret, at)


async def deliver_invoice_paid(
    client: httpx.AsyncClient, customer: str, secret: str, times: int = 2
) -> tuple[str, list[httpx.Response]]:
    """A new invoice's `invoice.paid`, signed with `secret` as Stripe signs it and
    POSTed `times` times to the client's /webhooks/stripe (Stripe redelivers)."""
    invoice_id = new_id("in")
    event = stripe_event("invoice.paid", invoice(invoice_id, customer, new_id("sub")))
    payload = json.dumps(event).encode()
    responses = []
    for _ in range(times):
        responses.append(
            await client.post(
                "/webhooks/stripe",
                content=payload,
                headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": sign_payload(payload, secret),
                },
            )
        )
    return invoice_id, responses


async def link_customer(db: Database, team_id: str, customer: str) -> None:
    async with db.transaction() as session:
        session.add(
            BillingCustomer(
                team_id=team_id, stripe_customer_id=customer, created_at=datetime.now(UTC)
            )
        )


BILLING_TOPICS = ("subscription.", "invoice.", "payment.")


async def outbox_topics(db: Database) -> list[str]:
    """Billing's own events in the outbox, in order; other services' (e.g. the
    notification a server's consumers create from them) are left out."""
    async with db.read() as session:
        rows = await session.scalars(select(OutboxRecord.topic).order_by(OutboxRecord.seq))
    return [topic for topic in rows if topic.startswith(BILLING_TOPICS)]


async def count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def processed_events(db: Database) -> int:
    return await count(db, StripeWebhookEvent)
