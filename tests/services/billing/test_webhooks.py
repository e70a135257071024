"""services/billing/webhooks.py: each Stripe event once, in any order, granting once."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from services.billing import BillingService, InvalidWebhook
from services.billing.models import BillingInvoice, BillingSubscription
from services.principal import Principal
from tests.services.billing.conftest import (
    count,
    invoice,
    link_customer,
    new_id,
    outbox_topics,
    processed_events,
    signed,
    stripe_event,
    subscription,
)


@pytest.fixture
async def linked(facades: Haunted) -> tuple[BillingService, str, str]:
    team, customer = new_id("team"), new_id("cus")
    await link_customer(facades.db, team, customer)
    return facades.services.billing, team, customer


async def deliver(billing: BillingService, event: dict[str, object]) -> str:
    return (await billing.handle_webhook(*signed(event))).status


async def test_a_redelivered_event_is_processed_once(
    facades: Haunted, linked: tuple[BillingService, str, str]
) -> None:
    billing, _team, customer = linked
    event = stripe_event("customer.subscription.created", subscription(new_id("sub"), customer))

    assert await deliver(billing, event) == "processed"
    assert await deliver(billing, event) == "duplicate"

    assert await outbox_topics(facades.db) == ["subscription.activated"]
    assert await processed_events(facades.db) == 1


async def test_concurrent_duplicates_are_processed_once(
    facades: Haunted, linked: tuple[BillingService, str, str]
) -> None:
    billing, _team, customer = linked
    event = stripe_event("customer.subscription.created", subscription(new_id("sub"), customer))

    outcomes = await asyncio.gather(*(deliver(billing, event) for _ in range(6)))

    assert sorted(outcomes) == ["duplicate"] * 5 + ["processed"]
    assert await outbox_topics(facades.db) == ["subscription.activated"]
    assert await count(facades.db, BillingSubscription) == 1


async def test_updated_before_created_ends_in_the_newest_state(
    facades: Haunted, linked: tuple[BillingService, str, str]
) -> None:
    billing, team, customer = linked
    sub_id = new_id("sub")
    now = int(time.time())
    created = stripe_event(
        "customer.subscription.created",
        subscription(sub_id, customer, "incomplete"),
        created=now - 5,
    )
    updated = stripe_event(
        "customer.subscription.updated",
        subscription(sub_id, customer, "active", price="price_team_yearly_test"),
        created=now,
    )

    assert await deliver(billing, updated) == "processed"
    assert await deliver(billing, created) == "processed"  # stored, but older: no effect

    async with facades.db.read() as session:
        row = await session.get(BillingSubscription, sub_id)
    assert row is not None
    assert (row.status, row.plan_id, row.team_id) == ("active", "team", team)
    assert await outbox_topics(facades.db) == ["subscription.activated"]


async def test_same_second_created_and_updated_order_by_meaning(
    facades: Haunted, linked: tuple[BillingService, str, str]
) -> None:
    billing, _team, customer = linked
    sub_id, now = new_id("sub"), int(time.time())
    canceled = subscription(sub_id, customer, "canceled")
    await deliver(billing, stripe_event("customer.subscription.deleted", canceled, created=now))
    active = subscription(sub_id, customer, "active")
    await deliver(billing, stripe_event("customer.subscription.updated", active, created=now))

    async with facades.db.read() as session:
        row = await session.get(BillingSubscription, sub_id)
    assert row is not None and row.status == "canceled"
    assert await outbox_topics(facades.db) == ["subscription.canceled"]


async def test_invoice_paid_and_its_twin_and_redeliveries_grant_once(
    facades: Haunted, linked: tuple[BillingService, str, str]
) -> None:
    billing, team, customer = linked
    sub_id, inv_id = new_id("sub"), new_id("in")
    paid = stripe_event("invoice.paid", invoice(inv_id, customer, sub_id))
    twin = stripe_event("invoice.payment_succeeded", invoice(inv_id, customer, sub_id))

    await deliver(billing, paid)
    await deliver(billing, paid)
    await asyncio.gather(deliver(billing, twin), deliver(billing, twin))

    assert await outbox_topics(facades.db) == ["invoice.paid"]
    async with facades.db.read() as session:
        row = await session.get(BillingInvoice, inv_id)
        record = (await session.execute(OutboxRecord.__table__.select())).first()
    assert row is not None and (row.status, row.amount_cents, row.team_id) == ("paid", 2900, team)
    assert record is not None


async def test_payment_failed_makes_the_subscription_past_due_once_per_attempt(
    facades: Haunted, linked: tuple[BillingService, str, str]
) -> None:
    billing, _team, customer = linked
    sub_id, inv_id = new_id("sub"), new_id("in")
    await deliver(
        billing,
        stripe_event(
            "customer.subscription.created", subscription(sub_id, customer), created=1_000
        ),
    )
    failed = stripe_event("invoice.payment_failed", invoice(inv_id, customer, sub_id, attempt=1))
    await deliver(billing, failed)
    # The same attempt reported again under another event id: no second payment.failed.
    again = stripe_event("invoice.payment_failed", invoice(inv_id, customer, sub_id, attempt=1))
    await deliver(billing, again)

    async with facades.db.read() as session:
        row = await session.get(BillingSubscription, sub_id)
    assert row is not None and row.status == "past_due"
    assert await outbox_topics(facades.db) == [
        "subscription.activated",
        "payment.failed",
        "subscription.updated",
    ]


async def test_cancellation_falls_back_to_the_default_plan(
    facades: Haunted, linked: tuple[BillingService, str, str]
) -> None:
    billing, _team, customer = linked
    sub_id = new_id("sub")
    await deliver(
        billing,
        stripe_event("customer.subscription.created", subscription(sub_id, customer), created=1),
    )
    await deliver(
        billing,
        stripe_event(
            "customer.subscription.deleted", subscription(sub_id, customer, "canceled"), created=2
        ),
    )
    async with facades.db.read() as session:
        record = await session.scalar(
            OutboxRecord.__table__.select()
            .where(OutboxRecord.topic == "subscription.canceled")
            .with_only_columns(OutboxRecord.value)
        )
    assert record is not None
    data = json.loads(record)
    assert data["plan_id"] == "pro"
    assert await count(facades.db, BillingSubscription) == 1
    mine = await billing.my_subscription(
        Principal("user", "session", {_team: "owner"}), team_id=_team
    )
    assert mine is None  # ended: the default plan applies


async def test_an_unknown_customer_is_recorded_and_ignored(facades: Haunted) -> None:
    billing = facades.services.billing
    event = stripe_event("customer.subscription.created", subscription(new_id("sub"), "cus_nope"))

    assert await deliver(billing, event) == "processed"

    assert await count(facades.db, BillingSubscription) == 0
    assert await outbox_topics(facades.db) == []
    assert await processed_events(facades.db) == 1


async def test_an_unknown_type_is_acknowledged_and_not_stored(facades: Haunted) -> None:
    billing = facades.services.billing

    assert await deliver(billing, stripe_event("charge.refunded", {"id": "ch_1"})) == "ignored"
    assert await processed_events(facades.db) == 0


@pytest.mark.parametrize(
    "tamper",
    ["bad_signature", "stale", "malformed", "not_an_event", "no_header"],
)
async def test_refused_input_writes_nothing(facades: Haunted, tamper: str) -> None:
    billing = facades.services.billing
    event = stripe_event("invoice.paid", invoice(new_id("in"), "cus_x", "sub_x"))
    payload, header = signed(event)
    if tamper == "bad_signature":
        header = signed(event, secret="whsec_wrong")[1]
    elif tamper == "stale":
        payload, header = signed(event, at=int(time.time()) - 3600)
    elif tamper == "malformed":
        payload = b'{"id": "evt_1", "type": '
        header = signed({}, at=None)[1].split(",")[0] + "," + _sig(payload)
    elif tamper == "not_an_event":
        payload = json.dumps({"object": "event", "id": 5}).encode()
        header = _header(payload)
    else:
        header = None

    with pytest.raises(InvalidWebhook):
        await billing.handle_webhook(payload, header)
    assert await processed_events(facades.db) == 0
    assert await outbox_topics(facades.db) == []


@pytest.mark.parametrize(
    ("type_", "obj", "named"),
    [
        ("customer.subscription.created", {"id": "sub_1", "customer": "cus_1"}, "status"),
        ("customer.subscription.updated", {"id": "sub_1", "status": 3}, "status"),
        ("customer.subscription.updated", {"id": "", "status": "active"}, "id"),
        (
            "customer.subscription.updated",
            {"id": "sub_1", "status": "active", "items": {"data": "not a list"}},
            "items",
        ),
        (
            "customer.subscription.deleted",
            {"id": "sub_1", "status": "canceled", "current_period_end": "soon"},
            "current_period_end",
        ),
        ("invoice.paid", {"customer": "cus_1", "amount_paid": 100}, "id"),
        ("invoice.payment_failed", {"id": "in_1", "attempt_count": "two"}, "attempt_count"),
        ("checkout.session.completed", {"id": "cs_1", "metadata": ["team"]}, "metadata"),
    ],
)
async def test_a_genuine_event_of_the_wrong_shape_is_refused_and_writes_nothing(
    facades: Haunted, type_: str, obj: dict[str, object], named: str
) -> None:
    customer = new_id("cus")
    await link_customer(facades.db, new_id("team"), customer)
    obj = {**obj, "customer": customer}
    with pytest.raises(InvalidWebhook) as refused:
        await facades.services.billing.handle_webhook(*signed(stripe_event(type_, obj)))
    assert type_ in str(refused.value)
    assert named in str(refused.value)
    assert await processed_events(facades.db) == 0
    assert await outbox_topics(facades.db) == []
    assert await count(facades.db, BillingSubscription) == 0
    assert await count(facades.db, BillingInvoice) == 0


@pytest.mark.parametrize(
    "envelope",
    [
        {"id": "evt_1", "type": "invoice.paid", "created": 1},  # no data
        {"id": "evt_1", "type": "invoice.paid", "created": "then", "data": {"object": {}}},
        {"id": "evt_1", "created": 1, "data": {"object": {}}},  # no type
        {"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": []}},
        [1, 2],
    ],
)
async def test_a_genuine_body_that_is_no_stripe_event_is_refused(
    facades: Haunted, envelope: object
) -> None:
    payload = json.dumps(envelope).encode()
    with pytest.raises(InvalidWebhook, match="not a Stripe event"):
        await facades.services.billing.handle_webhook(payload, _header(payload))
    assert await processed_events(facades.db) == 0


def _header(payload: bytes) -> str:
    from services.billing import LOCAL_WEBHOOK_SECRET, sign_payload

    return sign_payload(payload, LOCAL_WEBHOOK_SECRET)


def _sig(payload: bytes) -> str:
    return _header(payload).split(",")[1]
