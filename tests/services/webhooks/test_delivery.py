"""The delivery worker against real local endpoints: signatures (checked with the
`standardwebhooks` library), retries on the schedule, a hanging endpoint, disabling."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from events.envelope import Envelope
from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from schemas import TeamCreated
from services.webhooks import SCHEDULE_S, build_handlers
from services.webhooks.http import UrlPolicy
from services.webhooks.models import WebhookDelivery, WebhookEndpoint
from services.webhooks.service import WebhooksService
from tests.conftest import eventually
from tests.services.webhooks.conftest import (
    FakeClock,
    Receiver,
    Receivers,
    owner_of,
    running,
    webhooks_service,
    worker_for,
)


async def emit(app: Haunted, service: WebhooksService, team_id: str) -> Envelope:
    """One team event through the webhooks consumer's own path (its handler, and the
    idempotency record, in one transaction)."""
    event = TeamCreated(team_id=team_id, owner_id=str(uuid.uuid4()))
    envelope = Envelope.wrap(event, time=service.clock())
    handlers = build_handlers(service.clock)
    await app.consumers.apply(handlers.consumer, envelope, event, handlers.handle)
    return envelope


async def deliveries(app: Haunted, endpoint_id: str) -> list[WebhookDelivery]:
    async with app.db.read() as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.created_at)
        )
        return list(rows.all())


async def endpoint_for(
    service: WebhooksService, receiver: Receiver, team_id: str
) -> tuple[str, str]:
    created = await service.create_endpoint(
        owner_of(team_id), receiver.url, ["team.created"], team_id=team_id
    )
    assert created.secret is not None
    return created.id, created.secret


async def test_signed_cloud_events_verify_with_the_standard_library(
    facades: Haunted, receivers: Receivers
) -> None:
    clock = FakeClock()
    service = webhooks_service(facades.db, clock)
    receiver = await receivers()
    team = str(uuid.uuid4())
    endpoint_id, secret = await endpoint_for(service, receiver, team)
    assert secret.startswith("whsec_")
    worker = worker_for(service)
    async with running(worker):
        envelope = await emit(facades, service, team)
        await eventually(lambda: _count(receiver, 1))
        first = receiver.received[0]
        payload = Webhook(secret).verify(first.body, first.headers)
        assert payload["id"] == envelope.id and payload["type"] == "team.created"
        assert payload["specversion"] == "1.0" and payload["data"]["team_id"] == team
        assert first.headers["Content-Type"] == "application/cloudevents+json"
        assert first.headers["webhook-id"] == envelope.id

        rotated = await service.rotate_secret(owner_of(team), endpoint_id)
        assert rotated.secret is not None and rotated.secret != secret
        await emit(facades, service, team)
        await eventually(lambda: _count(receiver, 2))
        second = receiver.received[1]
        assert len(second.headers["webhook-signature"].split(" ")) == 2  # new and old
        Webhook(rotated.secret).verify(second.body, second.headers)
        Webhook(secret).verify(second.body, second.headers)  # the overlap

        clock.advance(service.config.secret_overlap.total_seconds() + 1)
        await emit(facades, service, team)
        await eventually(lambda: _count(receiver, 3))
        assert len(receiver.received[2].headers["webhook-signature"].split(" ")) == 1
    log = await deliveries(facades, endpoint_id)
    assert [(row.status, row.attempts, row.response_code) for row in log] == [
        ("succeeded", 1, 200)
    ] * 3
    assert all(row.latency_ms is not None for row in log)


async def test_an_endpoint_that_fails_then_recovers_gets_it_on_schedule(
    facades: Haunted, receivers: Receivers
) -> None:
    clock = FakeClock()
    service = webhooks_service(facades.db, clock)
    receiver = await receivers(answers=[500, 503])
    team = str(uuid.uuid4())
    endpoint_id, _ = await endpoint_for(service, receiver, team)
    async with running(worker_for(service)):
        await emit(facades, service, team)
        await eventually(lambda: _attempts(facades, endpoint_id, 1))
        assert len(receiver.received) == 1  # the second attempt waits for the clock
        clock.advance(SCHEDULE_S[1] * 1.25)  # past the 5 s wait and its jitter
        await eventually(lambda: _attempts(facades, endpoint_id, 2))
        clock.advance(SCHEDULE_S[2] * 1.25)
        await eventually(lambda: _count(receiver, 3))
        await eventually(lambda: _status(facades, endpoint_id, "succeeded"))
    [row] = await deliveries(facades, endpoint_id)
    assert (row.attempts, row.response_code, row.error) == (3, 200, None)
    assert len({each.headers["webhook-id"] for each in receiver.received}) == 1
    async with facades.db.read() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None and endpoint.failing_since is None and endpoint.enabled


async def test_a_hanging_endpoint_never_delays_the_others(
    facades: Haunted, receivers: Receivers
) -> None:
    clock = FakeClock()
    service = webhooks_service(facades.db, clock, max_in_flight_per_endpoint=2)
    hanging, healthy = await receivers(hang=True), await receivers()
    team = str(uuid.uuid4())
    await endpoint_for(service, hanging, team)
    await endpoint_for(service, healthy, team)
    async with running(worker_for(service)):
        for _ in range(6):
            await emit(facades, service, team)
        await eventually(lambda: _count(healthy, 6))
        await eventually(lambda: _count(hanging, 2))  # both its slots taken, still hanging

        # A later marker: by the time the healthy one has it, the hanging one would have
        # had a third request if its limit did not hold.
        await emit(facades, service, team)
        await eventually(lambda: _count(healthy, 7))
        assert hanging.most_at_once == 2
        assert len(hanging.received) == 2


async def test_redelivery_records_and_sends_once(facades: Haunted, receivers: Receivers) -> None:
    clock = FakeClock()
    service = webhooks_service(facades.db, clock)
    receiver = await receivers()
    team = str(uuid.uuid4())
    endpoint_id, _ = await endpoint_for(service, receiver, team)
    event = TeamCreated(team_id=team, owner_id="o")
    envelope = Envelope.wrap(event)
    handlers = build_handlers(service.clock)
    for _ in range(2):  # the consumer's idempotency record
        await facades.consumers.apply(handlers.consumer, envelope, event, handlers.handle)
    async with facades.db.transaction() as session:  # and the handler's own (event, endpoint)
        await handlers.handle(session, event, envelope)
    assert len(await deliveries(facades, endpoint_id)) == 1
    async with running(worker_for(service)):
        await emit(facades, service, team)  # a later marker
        await eventually(lambda: _count(receiver, 2))
    assert [each.headers["webhook-id"] for each in receiver.received].count(envelope.id) == 1


async def test_an_endpoint_failing_for_five_days_is_disabled_and_its_team_told(
    facades: Haunted, receivers: Receivers
) -> None:
    clock = FakeClock()
    service = webhooks_service(facades.db, clock)
    receiver = await receivers(answers=[500] * 100)
    team = str(uuid.uuid4())
    endpoint_id, _ = await endpoint_for(service, receiver, team)
    async with running(worker_for(service)):
        await emit(facades, service, team)
        await eventually(lambda: _attempts(facades, endpoint_id, 1))
        clock.advance(service.config.disable_after.total_seconds() + 1)
        await emit(facades, service, team)
        await eventually(lambda: _disabled(facades, endpoint_id))
    async with facades.db.read() as session:
        told = await session.scalars(
            select(OutboxRecord).where(OutboxRecord.topic == "notification.requested")
        )
        [record] = told.all()
    data = json.loads(record.value)
    assert data["team_id"] == team and data["type"] == "webhook.endpoint_disabled"
    assert data["data"] == {"endpoint_id": endpoint_id}
    assert (await service.endpoints(owner_of(team), team_id=team))[0].enabled is False
    async with facades.db.read() as session:
        changed = await session.scalars(
            select(OutboxRecord.value)
            .where(OutboxRecord.topic == "webhook.endpoint_changed")
            .order_by(OutboxRecord.seq)
        )
        assert [json.loads(value)["change"] for value in changed.all()] == [
            "created",
            "disabled",
        ]


async def test_each_delivery_checks_the_address_again(
    facades: Haunted, receivers: Receivers
) -> None:
    """An endpoint saved while its name resolved to an allowed address is checked
    again when sent to (DNS rebinding): here the worker's policy refuses loopback."""
    clock = FakeClock()
    service = webhooks_service(facades.db, clock)
    receiver = await receivers()
    team = str(uuid.uuid4())
    endpoint_id, _ = await endpoint_for(service, receiver, team)
    strict = UrlPolicy(require_https=False, allow_private=False)
    async with running(worker_for(service, strict)):
        await emit(facades, service, team)
        await eventually(lambda: _attempts(facades, endpoint_id, 1))
    [row] = await deliveries(facades, endpoint_id)
    assert row.response_code is None and "loopback" in (row.error or "")
    assert receiver.received == []


async def _count(receiver: Receiver, n: int) -> bool:
    return len(receiver.received) >= n


async def _attempts(app: Haunted, endpoint_id: str, n: int) -> bool:
    return any(row.attempts >= n for row in await deliveries(app, endpoint_id))


async def _status(app: Haunted, endpoint_id: str, status: str) -> bool:
    return all(row.status == status for row in await deliveries(app, endpoint_id))


async def _disabled(app: Haunted, endpoint_id: str) -> bool:
    async with app.db.read() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
        return row is not None and not row.enabled
