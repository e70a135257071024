"""Tables only the analytics service touches: every event, and who is in which team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, text, true
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base


class AnalyticsEvent(Base):
    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_team_type_time", "team_id", "type", "time"),
        Index("ix_analytics_events_user_type_time", "user_id", "type", "time"),
        # Active users scan a team's events of every type over a time range.
        Index("ix_analytics_events_team_time", "team_id", "time"),
        Index("ix_analytics_events_user_time", "user_id", "time"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the CloudEvent id
    type: Mapped[str] = mapped_column(String(200))
    time: Mapped[datetime] = mapped_column()
    source: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(64))
    team_id: Mapped[str | None] = mapped_column(String(64))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)


class TeamMember(Base):
    """Analytics' own read model of memberships, built from auth events.

    Additions and removals come on different topics, so they may arrive in any
    order: the latest change by event time wins, and a removal stays as a
    tombstone (`active` false) so an older addition replayed later cannot revive it.
    """

    __tablename__ = "analytics_team_members"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    changed_at: Mapped[datetime] = mapped_column(server_default=text("'1970-01-01 00:00:00+00:00'"))
