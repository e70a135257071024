"""The fault suite: a whole process under load while one dependency fails.

A load generator logs users in, tracks events through the GraphQL API, posts
signed Stripe webhooks (`invoice.paid`, each delivered twice, as Stripe redelivers)
and has notifications sent to one user, whose Socket.IO client stays connected (and
reconnects with `since` if dropped), all against a
process running every service (gateway, consumers, relay) over a PostgreSQL
and a Redis of the test's own and the embedded broker. Meanwhile one fault:

- PostgreSQL stopped (every session cut), then started;
- Redis stopped, then started;
- the broker frozen (SIGSTOP: connections open, no answers), then thawed.

Requests may fail during the fault (the load generator counts them); what was
acknowledged must come through. After recovery each scenario checks that every
event a client saw acknowledged was applied by the analytics group, exactly
once; that every other consumer group (auth, notifications, audit, webhooks,
llm, flags, ...) applied exactly the records on its topics, which are exactly
the events the process committed (its outbox), the positive marker being that
each group has applied every committed event of its topics, and the topics
read once the process has stopped; that every acknowledged webhook was applied
once (one invoice row, one `invoice.paid` event: the relay publishes at least
once, so a record may repeat with its event id); that no consumer
dead-lettered anything; and that each key's events are on the topic in the
order they were committed. Outages are short here (a few seconds, past every
retry step); `make faults` runs them at 30 s (PostgreSQL, Redis) and 60 s
(broker). The time to recover is printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from events.broker import DLQ_SUFFIX
from events.consumer import ProcessedEvent
from events.embedded import EmbeddedBroker
from events.handlers import Handlers
from events.outbox import OutboxRecord
from haunted.runtime import kafka_settings
from haunted.services import SPECS, facades_of
from schemas import CATALOG
from services.analytics.models import AnalyticsEvent
from services.billing.models import BillingInvoice
from services.notifications.models import Notification
from tests.conftest import LOGIN, PASSWORD, Server, eventually, register, serve
from tests.events.conftest import header, read_all, tansu_pid
from tests.faults.conftest import fault_settings, outage_s
from tests.faults.scratch import ScratchPostgres, ScratchRedis
from tests.gateway.realtime import Recorder, notify
from tests.services.billing.conftest import deliver_invoice_paid, link_customer, new_id

TRACK = (
    "mutation($name: String!, $properties: JSON) { track(name: $name, properties: $properties) }"
)
STEP = "load.step"
USERS = 3
WEBHOOK_SECRET = "whsec_fault_suite"
WEBHOOK_EVERY = 3  # steps per webhook: a handful per short scenario


@dataclass
class Load:
    """What the clients did, and what they were told."""

    users: list[dict[str, str]] = field(default_factory=list)  # id, email, token
    acknowledged: set[tuple[str, int]] = field(default_factory=set)  # (user, n) tracked
    attempted: set[tuple[str, int]] = field(default_factory=set)
    notified: int = 0  # notifications requested (committed) for the watching user
    logins: int = 0
    team: str = ""  # the team whose Stripe customer pays the invoices
    customer: str = ""
    invoices_attempted: set[str] = field(default_factory=set)
    invoices_acknowledged: set[str] = field(default_factory=set)  # a 2xx on some delivery
    failures: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def generate(server: Server, load: Load) -> None:
    """Each user in turn: track the next step, and every few steps log in again."""
    n = 0
    while not load.stop.is_set():
        n += 1
        for user in load.users:
            load.attempted.add((user["id"], n))
            try:
                body = await server.graphql(
                    TRACK, {"name": STEP, "properties": {"n": n}}, token=user["token"]
                )
                if body.get("data", {}) and body["data"].get("track") is True:
                    load.acknowledged.add((user["id"], n))
                else:
                    load.failures += 1
                if user is load.users[0]:  # the user whose Socket.IO client watches
                    await notify(server.haunted, user["id"], f"step {n}")
                    load.notified += 1
                if user is load.users[0] and n % WEBHOOK_EVERY == 0:
                    await pay_invoice(server, load)
                if n % 5 == 0:
                    login = await server.graphql(
                        LOGIN, {"email": user["email"], "password": PASSWORD}
                    )
                    if login.get("data"):
                        user["token"] = login["data"]["login"]["token"]
                        load.logins += 1
                    else:
                        load.failures += 1
            except Exception:  # the server may not answer at all during the fault
                load.failures += 1
        await asyncio.sleep(0.02)  # pacing of the load, not a wait for a condition


async def pay_invoice(server: Server, load: Load) -> None:
    """A signed `invoice.paid` for a new invoice, delivered twice (Stripe redelivers)."""
    async with server.client() as client:
        invoice_id, responses = await deliver_invoice_paid(client, load.customer, WEBHOOK_SECRET)
    load.invoices_attempted.add(invoice_id)
    for response in responses:
        if response.is_success:
            load.invoices_acknowledged.add(invoice_id)
        else:
            load.failures += 1


async def stored_invoices(server: Server, team: str) -> list[str]:
    async with server.haunted.db.read() as session:
        return list(
            await session.scalars(
                select(BillingInvoice.id).where(
                    BillingInvoice.team_id == team, BillingInvoice.status == "paid"
                )
            )
        )


async def stored_steps(server: Server) -> list[tuple[str, int]]:
    async with server.haunted.db.read() as session:
        rows = await session.execute(
            select(AnalyticsEvent.user_id, AnalyticsEvent.properties).where(
                AnalyticsEvent.type == STEP
            )
        )
        found = []
        for user_id, properties in rows.all():
            data = json.loads(properties) if isinstance(properties, str) else properties
            found.append((str(user_id), int(data["properties"]["n"])))
        return found


async def outbox_drained(server: Server) -> bool:
    async with server.haunted.db.read() as session:
        pending = await session.scalar(
            select(OutboxRecord.seq).where(OutboxRecord.sent_at.is_(None)).limit(1)
        )
        return pending is None


Fault = Callable[[], Awaitable[None]]


@pytest.fixture(params=["postgres", "redis", "broker"])
def fault_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_dependency_fails_under_load_and_nothing_is_lost_doubled_or_reordered(
    fault_name: str,
    scratch_postgres: ScratchPostgres,
    scratch_redis: ScratchRedis,
    kafka: EmbeddedBroker,
    tmp_path: Path,
    signing_key_files: tuple[Path, Path],
    pytestconfig: pytest.Config,
) -> None:
    settings = fault_settings(
        scratch_postgres.url(),
        scratch_redis.url,
        kafka.bootstrap_servers,
        tmp_path,
        signing_key_files,
        consumer_max_backoff_s=1.0,
        auth_rate_limit_per_ip="100000/minute",
        auth_rate_limit_per_account="100000/minute",
        analytics={"track_rate_limit": "100000/minute"},
        stripe_webhook_secret=SecretStr(WEBHOOK_SECRET),
    )
    down_for = outage_s(pytestconfig, short=3, long=60 if fault_name == "broker" else 30)
    tansu = tansu_pid(kafka)
    faults: dict[str, tuple[Fault, Fault]] = {
        "postgres": (lambda: scratch_postgres.stop("fast"), scratch_postgres.start),
        "redis": (scratch_redis.stop, scratch_redis.start),
        "broker": (
            lambda: asyncio.to_thread(os.kill, tansu, signal.SIGSTOP),
            lambda: asyncio.to_thread(os.kill, tansu, signal.SIGCONT),
        ),
    }
    begin, end = faults[fault_name]
    load = Load()
    watcher = Recorder(reconnection=True)
    async with serve(settings) as server:
        load.team, load.customer = new_id("team"), new_id("cus")
        await link_customer(server.haunted.db, load.team, load.customer)
        for _ in range(USERS):
            me = await register(server)
            load.users.append(
                {"id": me["user"]["id"], "email": me["user"]["email"], "token": me["token"]}
            )
        watched = load.users[0]

        def auth() -> dict[str, str]:  # on every (re)connection: resume after the last one
            received = watcher.named("notification")
            return {
                "token": watched["token"],
                **({"since": received[-1]["id"]} if received else {}),
            }

        await watcher.connect(server.url, auth)
        await watcher.wait_for("connection_ready")
        generator = asyncio.create_task(generate(server, load))
        try:
            await eventually(lambda: _at_least(load, 10 * USERS), timeout_s=60)
            await begin()
            try:
                await asyncio.sleep(down_for)  # the outage itself
            finally:
                await end()
            back = time.monotonic()
            # Acknowledged again after the fault: the process serves again.
            after = len(load.acknowledged)
            await eventually(lambda: _at_least(load, after + 10 * USERS), timeout_s=120)
        finally:
            load.stop.set()
            await generator

        groups = consumer_groups(server)

        async def caught_up() -> bool:
            stored = set(await stored_steps(server))
            paid = set(await stored_invoices(server, load.team))
            return (
                load.acknowledged <= stored
                and load.invoices_acknowledged <= paid
                and await outbox_drained(server)
                and await every_group_applied_the_outbox(server, groups)
            )

        await eventually(caught_up, timeout_s=180, interval_s=0.2)
        recovered = time.monotonic() - back
        # No notification missed by the client that lived through the fault: after a
        # later marker, what it received is exactly the inbox, in order, once each.
        await notify(server.haunted, watched["id"], "marker")
        await eventually(lambda: _inbox_has(server, watched["id"], "marker"), timeout_s=60)
        stored_notifications = await inbox_ids(server, watched["id"])
        assert len(stored_notifications) >= load.notified + 1
        await watcher.wait_for("notification", len(stored_notifications), timeout_s=60)
        delivered = [n["id"] for n in watcher.named("notification")]
        await watcher.close()
        steps_stored = await stored_steps(server)
        invoices_stored = await stored_invoices(server, load.team)
        kafka_config = kafka_settings(settings)
        dead = await read_all(kafka_config, *(topic + DLQ_SUFFIX for topic in CATALOG))
        committed = await committed_ids(server)
        applied = {group.consumer: await applied_ids(server, group.consumer) for group in groups}
    # Read with the process gone: read_all's markers then reach no live consumer.
    group_topics = sorted({topic for group in groups for topic in group.topics})
    on_topics = await read_all(kafka_config, *group_topics)
    tracked = await read_all(kafka_config, "analytics.tracked")
    paid_events = await read_all(kafka_config, "invoice.paid")

    print(
        f"\n{fault_name} down {down_for:.0f} s: caught up {recovered:.1f} s after;"
        f" {len(load.acknowledged)} events acknowledged, {load.notified} notifications,"
        f" {load.logins} logins, {len(load.invoices_acknowledged)} webhooks acknowledged"
        f" (of {len(load.invoices_attempted)}, each posted twice),"
        f" {load.failures} requests failed"
    )
    assert delivered == stored_notifications
    # Committed = applied, by every consumer group that keeps idempotency records,
    # against the records on its topics: the outbox's committed events are all on the
    # topics (and nothing else is), and each group applied exactly its topics' records.
    ids_on: dict[str, set[str]] = defaultdict(set)
    for record in on_topics:
        ids_on[record.topic].add(str(header(record, "ce_id")))
    assert {topic: ids for topic, ids in committed.items() if topic in group_topics} == {
        topic: ids for topic, ids in ids_on.items() if ids
    }
    for group in groups:
        expected = set().union(*(ids_on[topic] for topic in group.topics))
        assert applied[group.consumer] == expected, group.consumer
    busy = sorted(group.consumer for group in groups if applied[group.consumer])
    print(f"groups that applied events: {busy}")
    assert {"notifications", "audit", "webhooks"} <= set(busy), busy
    # Committed = applied: every acknowledged event is stored, and nothing that was
    # never attempted; each once (an event stored twice would show as a repeat).
    assert load.acknowledged <= set(steps_stored)
    assert set(steps_stored) <= load.attempted
    assert len(steps_stored) == len(set(steps_stored))
    # Every acknowledged webhook applied exactly once; the second delivery absorbed.
    assert load.invoices_acknowledged, "no webhook was acknowledged"
    assert load.invoices_acknowledged <= set(invoices_stored) <= load.invoices_attempted
    assert len(invoices_stored) == len(set(invoices_stored))
    # One `invoice.paid` event per invoice. The relay publishes at least once (a row
    # whose mark was lost in the fault goes out again, with its id): count events by id.
    published = {header(record, "ce_id"): _invoice_id(record.value) for record in paid_events}
    assert sorted(published.values()) == sorted(invoices_stored), published
    print(f"invoice.paid records published again: {len(paid_events) - len(published)}")
    assert dead == [], [header(record, "dlq_error") for record in dead]
    # Per key (the user), the steps are on the topic in the order they were committed.
    steps: dict[bytes | None, list[int]] = defaultdict(list)
    for record in tracked:
        data = json.loads(record.value or b"{}")
        if data.get("name") == STEP and data["properties"]["n"] not in steps[record.key]:
            steps[record.key].append(data["properties"]["n"])
    assert steps and all(ns == sorted(ns) for ns in steps.values()), steps


def consumer_groups(server: Server) -> list[Handlers]:
    """The process's consumer groups that keep an idempotency record per event (the
    batch-writing analytics group keeps none: its rows are checked by `stored_steps`)."""
    facades = facades_of(server.haunted.services)
    return [
        registry
        for spec in SPECS
        if spec.name in server.haunted.workers
        for registry in spec.registries(facades)
        if isinstance(registry, Handlers)
    ]


async def committed_ids(server: Server) -> dict[str, set[str]]:
    """Every event the process committed (its outbox rows, sent), by topic."""
    async with server.haunted.db.read() as session:
        rows = await session.execute(select(OutboxRecord.topic, OutboxRecord.event_id))
        found: dict[str, set[str]] = defaultdict(set)
        for topic, event_id in rows.all():
            found[topic].add(event_id)
        return found


async def applied_ids(server: Server, consumer: str) -> set[str]:
    async with server.haunted.db.read() as session:
        return set(
            await session.scalars(
                select(ProcessedEvent.event_id).where(ProcessedEvent.consumer == consumer)
            )
        )


async def every_group_applied_the_outbox(server: Server, groups: list[Handlers]) -> bool:
    """The positive marker: each group has applied every committed event of its topics."""
    committed = await committed_ids(server)
    for group in groups:
        expected = set().union(*(committed.get(topic, set()) for topic in group.topics))
        if not expected <= await applied_ids(server, group.consumer):
            return False
    return True


def _invoice_id(value: bytes | None) -> Any:
    return json.loads(value or b"{}").get("invoice_id")


async def inbox_ids(server: Server, user_id: str) -> list[str]:
    """Every notification of the user, oldest first (ids sort by time)."""
    async with server.haunted.db.read() as session:
        return list(
            await session.scalars(
                select(Notification.id)
                .where(Notification.user_id == user_id)
                .order_by(Notification.id)
            )
        )


async def _inbox_has(server: Server, user_id: str, title: str) -> bool:
    async with server.haunted.db.read() as session:
        found = await session.scalar(
            select(Notification.id).where(
                Notification.user_id == user_id, Notification.title == title
            )
        )
        return found is not None


async def _at_least(load: Load, count: int) -> bool:
    return len(load.acknowledged) >= count
