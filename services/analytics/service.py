"""The analytics facade: product questions, answered from analytics' own store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from events.db import Database
from services.analytics.models import AnalyticsEvent, TeamMember
from services.errors import BadUserInput
from services.principal import Principal, requires

MAX_NAMES = 100


@dataclass(frozen=True, slots=True)
class EventCount:
    name: str
    count: int


class AnalyticsService:
    def __init__(self, db: Database) -> None:
        self._db = db

    @requires("analytics:read")
    async def event_counts(
        self,
        principal: Principal,
        names: Sequence[str] | None = None,
        since: datetime | None = None,
        *,
        team_id: str | None = None,
    ) -> list[EventCount]:
        """How often each event type occurred in the caller's team."""
        team = team_id
        if names is not None and len(names) > MAX_NAMES:
            raise BadUserInput(f"names takes at most {MAX_NAMES} entries", field="names")
        members = select(TeamMember.user_id).where(TeamMember.team_id == team)
        # Events that name the team, and team-less events of its members (e.g. logins).
        in_team = or_(
            AnalyticsEvent.team_id == team,
            and_(AnalyticsEvent.team_id.is_(None), AnalyticsEvent.user_id.in_(members)),
        )
        query = select(AnalyticsEvent.type, func.count()).where(in_team)
        if names is not None:
            query = query.where(AnalyticsEvent.type.in_(list(names)))
        if since is not None:
            query = query.where(AnalyticsEvent.time >= since)
        query = query.group_by(AnalyticsEvent.type).order_by(AnalyticsEvent.type)
        async with self._db.read() as session:
            rows = (await session.execute(query)).all()
        return [EventCount(name, count) for name, count in rows]
