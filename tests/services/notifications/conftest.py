"""Notifications fixtures: the service's tables on a migrated database of each backend,
and events handled the way its consumer handles them (idempotent on the event id)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from events.broker import Bus, KafkaProducer, KafkaSettings
from events.consumer import EventConsumers, Outcome
from events.db import Database
from events.envelope import Envelope
from events.outbox import OutboxRecord
from schemas import Event, TeamMemberAdded, UserRegistered
from services.notifications import CONSUMER, HANDLERS, NotificationsService
from services.notifications.models import Notification
from services.principal import Principal


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def consumers(db: Database) -> EventConsumers:
    # apply() never publishes: the producer is only there to satisfy the constructor.
    return EventConsumers(
        db, KafkaProducer(Bus(KafkaSettings("127.0.0.1:1"))), KafkaSettings("127.0.0.1:1")
    )


@pytest.fixture
def notifications(db: Database) -> NotificationsService:
    return NotificationsService(db)


async def handle(
    consumers: EventConsumers, event: Event, envelope: Envelope | None = None
) -> Outcome:
    """Handles `event` as the notifications consumer would; pass `envelope` to redeliver."""
    envelope = envelope or Envelope.wrap(event)
    return await consumers.apply(CONSUMER, envelope, event, HANDLERS.handle)


def new_id() -> str:
    return str(uuid.uuid4())


def principal(user_id: str) -> Principal:
    return Principal(user_id=user_id, session_id=new_id())


async def registered(consumers: EventConsumers) -> tuple[str, str]:
    """A user and the team they own, as the auth events tell notifications."""
    user_id, team_id = new_id(), new_id()
    await handle(consumers, UserRegistered(user_id=user_id, team_id=team_id))
    await handle(consumers, TeamMemberAdded(team_id=team_id, user_id=user_id, role="owner"))
    return user_id, team_id


async def inbox(db: Database, user_id: str) -> list[Notification]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(Notification)
                .where(Notification.user_id == user_id)
                .order_by(Notification.id)
            )
        )


async def created_events(db: Database) -> list[dict[str, Any]]:
    """The notification.created events waiting in the outbox, in order."""
    async with db.read() as session:
        rows = await session.scalars(
            select(OutboxRecord)
            .where(OutboxRecord.topic == "notification.created")
            .order_by(OutboxRecord.seq)
        )
        return [Envelope.from_record(row.headers, row.value).data for row in rows]


async def outbox_size(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxRecord)) or 0)
