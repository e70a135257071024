"""The `webhooks` consumer group: each public or team event becomes due deliveries.

The handler only records what is due, in the consumer's transaction (so a
redelivered event records nothing twice: one row per event and endpoint); the
delivery worker sends them, so a slow endpoint never holds the consumer back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from events.envelope import SPECVERSION, Envelope
from events.handlers import Handlers
from schemas import CATALOG, Audience, Event
from services.webhooks.models import WebhookDelivery, WebhookEndpoint

CONSUMER = "webhooks"  # the consumer group's name: deployed state, never renamed
# What a team may subscribe to: what its members could see pushed (events.md: Audience).
DELIVERABLE: tuple[type[Event], ...] = tuple(
    model for model in CATALOG.values() if model.audience in (Audience.PUBLIC, Audience.TEAM)
)
EVENT_TYPES: frozenset[str] = frozenset(model.topic for model in DELIVERABLE)
PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"

Clock = Callable[[], datetime]


def cloud_event(envelope: Envelope) -> bytes:
    """The event in CloudEvents structured mode (JSON), as receivers get it."""
    document = {
        "specversion": SPECVERSION,
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
        "subject": envelope.subject,
        "time": envelope.to_push()["time"],
        "datacontenttype": "application/json",
        **({"dataschema": envelope.dataschema} if envelope.dataschema else {}),
        "data": envelope.data,
    }
    return orjson.dumps(document)


async def schedule(
    session: AsyncSession,
    envelope: Envelope,
    team_id: str | None,
    now: datetime,
    *,
    endpoint_id: str | None = None,
    again: bool = False,
) -> int:
    """Records the event as due for each enabled endpoint that wants it (only the
    team's, for a team event); `again` (a replay) makes a past delivery due anew.
    Returns how many deliveries it made due."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))
    if team_id is not None:
        query = query.where(WebhookEndpoint.team_id == team_id)
    if endpoint_id is not None:
        query = query.where(WebhookEndpoint.id == endpoint_id)
    # Live, an endpoint gets the events that happened since it was created, however far
    # behind the consumer runs; what came before is a replay's to send.
    endpoints = [
        row
        for row in (await session.scalars(query)).all()
        if envelope.type in json.loads(row.event_types)
        and (again or envelope.time >= row.created_at)
    ]
    if not endpoints:
        return 0
    existing = {
        row.endpoint_id: row
        for row in (
            await session.scalars(
                select(WebhookDelivery).where(
                    WebhookDelivery.event_id == envelope.id,
                    WebhookDelivery.endpoint_id.in_([each.id for each in endpoints]),
                )
            )
        ).all()
    }
    body = cloud_event(envelope)
    due = 0
    for endpoint in endpoints:
        delivery = existing.get(endpoint.id)
        if delivery is None:
            session.add(
                WebhookDelivery(
                    id=str(uuid.uuid4()),
                    endpoint_id=endpoint.id,
                    event_id=envelope.id,
                    event_type=envelope.type,
                    body=body,
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            due += 1
        elif again and delivery.status != PENDING:
            delivery.status, delivery.attempts, delivery.next_attempt_at = PENDING, 0, now
            delivery.error = None
            due += 1
    return due


def team_of(event: Event) -> str | None:
    """The team a team event belongs to; None for a public event (every team's)."""
    if event.audience is Audience.TEAM:
        return str(getattr(event, "team_id", "") or "") or "-"
    return None


def build_handlers(clock: Clock) -> Handlers:
    handlers = Handlers(CONSUMER)

    @handlers.on(*DELIVERABLE)
    async def on_event(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        await schedule(session, envelope, team_of(event), clock())

    return handlers


__all__ = ["CONSUMER", "DELIVERABLE", "EVENT_TYPES", "build_handlers", "cloud_event", "schedule"]
