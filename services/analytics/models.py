"""Tables only the analytics service touches: every event, and who is in which team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base


class AnalyticsEvent(Base):
    __tablename__ = "analytics_events"
    __table_args__ = (
        Index("ix_analytics_events_team_type_time", "team_id", "type", "time"),
        Index("ix_analytics_events_user_type_time", "user_id", "type", "time"),
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
    """Analytics' own read model of memberships, built from auth events."""

    __tablename__ = "analytics_team_members"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
