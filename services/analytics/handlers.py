"""Analytics consumes every catalog topic into its own store."""

from __future__ import annotations

from faststream.kafka import KafkaRouter
from sqlalchemy import delete
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


async def record_event(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """Stores the event once (its CloudEvent id is the key) and follows memberships."""
    if await session.get(AnalyticsEvent, envelope.id) is None:
        user_id = getattr(event, "user_id", None)
        team_id = getattr(event, "team_id", None)
        session.add(
            AnalyticsEvent(
                id=envelope.id,
                type=event.name if isinstance(event, AnalyticsTracked) else envelope.type,
                time=envelope.time,
                source=envelope.source,
                subject=envelope.subject,
                user_id=user_id,
                team_id=team_id,
                properties=envelope.data,
            )
        )
    if isinstance(event, UserRegistered | TeamMemberAdded):
        member = (event.team_id, event.user_id)
        if await session.get(TeamMember, member) is None:
            session.add(TeamMember(team_id=event.team_id, user_id=event.user_id))
    elif isinstance(event, TeamMemberRemoved):
        await session.execute(
            delete(TeamMember).where(
                TeamMember.team_id == event.team_id, TeamMember.user_id == event.user_id
            )
        )


def build_router(consumers: EventConsumers) -> KafkaRouter:
    router = KafkaRouter()
    # The catalog, never a hand-kept list: a new topic is ingested the day it exists.
    consumers.subscribe(router, CONSUMER, CATALOG, record_event)
    return router


__all__ = ["CONSUMER", "build_router", "record_event"]
