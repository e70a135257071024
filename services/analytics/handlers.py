"""Analytics consumes every catalog topic into its own store, a batch per transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from faststream.kafka import KafkaRouter
from sqlalchemy import Table, and_, delete, or_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from events.consumer import EventConsumers
from events.envelope import Envelope
from schemas import (
    CATALOG,
    AnalyticsTracked,
    Event,
    TeamMemberAdded,
    TeamMemberRemoved,
    UserRegistered,
)
from services.analytics.models import AnalyticsEvent, TeamMember

CONSUMER = "analytics"
EVENTS: Table = AnalyticsEvent.__table__  # type: ignore[assignment]
MEMBERS: Table = TeamMember.__table__  # type: ignore[assignment]
TOPICS = tuple(CATALOG)  # the catalog, never a hand-kept list


def _row(envelope: Envelope, event: Event) -> dict[str, Any]:
    return {
        "id": envelope.id,
        "type": event.name if isinstance(event, AnalyticsTracked) else envelope.type,
        "time": envelope.time,
        "source": envelope.source,
        "subject": envelope.subject,
        "user_id": getattr(event, "user_id", None),
        "team_id": getattr(event, "team_id", None),
        "properties": envelope.data,
    }


def _insert(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql_insert if dialect == "postgresql" else sqlite_insert


async def record_batch(session: AsyncSession, items: Sequence[tuple[Envelope, Event]]) -> None:
    """Stores each event once: the CloudEvent id is the key, so a redelivered or
    replayed event changes nothing. Memberships are followed in record order."""
    insert = _insert(session)
    rows = list({envelope.id: _row(envelope, event) for envelope, event in items}.values())
    # Core, not the ORM's bulk path: a third of the batch's time otherwise.
    connection = await session.connection()
    if rows:
        await connection.execute(insert(EVENTS).on_conflict_do_nothing(index_elements=["id"]), rows)
    changes: dict[tuple[str, str], dict[str, Any]] = {}
    for envelope, event in items:
        if isinstance(event, UserRegistered | TeamMemberAdded | TeamMemberRemoved):
            change = {
                "team_id": event.team_id,
                "user_id": event.user_id,
                "active": not isinstance(event, TeamMemberRemoved),
                "changed_at": envelope.time,
            }
            member = (event.team_id, event.user_id)
            if member not in changes or _newer(change, changes[member]):
                changes[member] = change
    if changes:
        statement = insert(MEMBERS)
        current = MEMBERS.c
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=["team_id", "user_id"],
                set_={
                    "active": statement.excluded.active,
                    "changed_at": statement.excluded.changed_at,
                },
                # The latest change wins; at the same instant, a removal.
                where=or_(
                    current.changed_at < statement.excluded.changed_at,
                    and_(
                        current.changed_at == statement.excluded.changed_at,
                        current.active > statement.excluded.active,
                    ),
                ),
            ),
            list(changes.values()),
        )


def _newer(change: dict[str, Any], than: dict[str, Any]) -> bool:
    if change["changed_at"] != than["changed_at"]:
        return bool(change["changed_at"] > than["changed_at"])
    return not change["active"] and than["active"]


async def record_event(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """One event, as a batch of one."""
    await record_batch(session, [(envelope, event)])


async def clear_store(session: AsyncSession) -> None:
    """Empties analytics' tables, before a rebuild by replay."""
    await session.execute(delete(AnalyticsEvent))
    await session.execute(delete(TeamMember))


def build_router(consumers: EventConsumers) -> KafkaRouter:
    router = KafkaRouter()
    consumers.subscribe_batch(router, CONSUMER, TOPICS, record_batch)
    return router


__all__ = ["CONSUMER", "TOPICS", "build_router", "clear_store", "record_batch", "record_event"]
