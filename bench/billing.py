"""Stripe webhook handling against the bare cost of verifying the same payloads.

    python -m bench.billing [--events N] [--duplicates F] [--concurrency C]
                            [--backend real|embedded|both]

N signed events (subscription created/updated and invoice.paid for N/3 teams),
with a fraction F delivered twice. The baseline is `stripe.Webhook.construct_event`
alone on every delivery; the measured path is `BillingService.handle_webhook`:
verify, store the event id, apply, write outbox events, commit. Stripe sends a
webhook endpoint many events at once, each its own request: C deliveries are in
flight together (C=1: one by one). Prints deliveries per second and the ratio,
and records issue 19's goal: ≥ 1,000 deliveries/s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import stripe
from sqlalchemy import func, select

from bench.common import BACKENDS, Backend, heading, line, quiet_logs, stores
from bench.summary import goal
from events.db import Database
from events.outbox import OutboxRecord
from services.billing import LOCAL_WEBHOOK_SECRET, BillingConfig, BillingService, load_plans
from services.billing.models import BillingCustomer
from services.billing.webhooks import encode_event, sign_payload


def _events(teams: int) -> list[dict[str, Any]]:
    now = int(time.time())
    events: list[dict[str, Any]] = []
    for n in range(teams):
        customer, sub = f"cus_bench_{n}", f"sub_bench_{n}"
        obj = {
            "id": sub,
            "object": "subscription",
            "customer": customer,
            "status": "active",
            "current_period_end": now + 30 * 24 * 3600,
            "metadata": {"plan_id": "pro"},
        }
        invoice = {
            "id": f"in_bench_{n}",
            "object": "invoice",
            "customer": customer,
            "subscription": sub,
            "amount_paid": 2900,
            "currency": "usd",
        }
        for offset, (kind, data) in enumerate(
            (
                ("customer.subscription.created", obj),
                ("customer.subscription.updated", {**obj, "cancel_at_period_end": True}),
                ("invoice.paid", invoice),
            )
        ):
            events.append(
                {
                    "id": f"evt_bench_{n}_{offset}",
                    "object": "event",
                    "type": kind,
                    "created": now + offset,
                    "data": {"object": data},
                }
            )
    return events


async def run(backend: Backend, count: int, duplicates: float, concurrency: int) -> None:
    quiet_logs()
    teams = max(1, count // 3)
    events = _events(teams)
    rng = random.Random(5)
    deliveries = [*events, *rng.sample(events, int(len(events) * duplicates))]
    rng.shuffle(deliveries)
    signed = []
    for event in deliveries:
        payload = encode_event(event)
        signed.append((payload, sign_payload(payload, LOCAL_WEBHOOK_SECRET)))

    started = time.perf_counter()
    for payload, header in signed:
        stripe.Webhook.construct_event(payload, header, LOCAL_WEBHOOK_SECRET)
    baseline = len(signed) / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as directory:
        async with stores(backend, Path(directory)) as store:
            # A slow-query line per statement under load would be part of the measure.
            db = Database(store.database_url, slow_query_ms=60_000)
            config = BillingConfig(
                env="test",
                public_url="http://127.0.0.1:8000",
                webhook_secret=LOCAL_WEBHOOK_SECRET,
            )
            billing = BillingService(db, load_plans(), config)
            async with db.transaction() as session:
                for n in range(teams):
                    session.add(
                        BillingCustomer(
                            team_id=f"team_{n}",
                            stripe_customer_id=f"cus_bench_{n}",
                            created_at=datetime.now(UTC),
                        )
                    )
            pending = iter(signed)

            async def deliver() -> None:
                # Each delivery as the webhook route makes it, `concurrency` at a time.
                for payload, header in pending:
                    await billing.handle_webhook(payload, header)

            started = time.perf_counter()
            await asyncio.gather(*(deliver() for _ in range(concurrency)))
            measured = len(signed) / (time.perf_counter() - started)
            async with db.read() as session:
                published = dict(
                    (
                        await session.execute(
                            select(OutboxRecord.topic, func.count()).group_by(OutboxRecord.topic)
                        )
                    ).all()
                )
            await db.dispose()

    heading(
        f"billing webhooks ({backend}): {len(signed)} deliveries, {len(events)} distinct, "
        f"{concurrency} in flight"
    )
    line("construct_event only", f"{baseline:,.0f} /s")
    line("handle_webhook (verify+store)", f"{measured:,.0f} /s")
    line("ratio", f"{baseline / measured:.1f}x the bare verification cost")
    if backend == "real":
        goal(
            "Stripe webhooks (PostgreSQL)",
            f"{measured:,.0f}/s vs construct_event {baseline:,.0f}/s",
            measured,
            1000,
            unit="/s",
        )
    # Per team exactly one activated and one invoice.paid, duplicates or not; an
    # `updated` that overtook its `created` was applied first, so it adds no event.
    for topic, n in sorted(published.items()):
        line(f"  {topic}", f"{n} (teams: {teams})")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.billing")
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    args = parser.parse_args(argv)
    backends: tuple[Backend, ...] = BACKENDS if args.backend == "both" else (args.backend,)
    for backend in backends:
        asyncio.run(run(backend, args.events, args.duplicates, args.concurrency))


if __name__ == "__main__":
    main()
