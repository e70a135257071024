"""Tables only the analytics service touches: every event, and who is in which team."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, text, true
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base

IN_A_TEAM = text("team_id IS NOT NULL")
TEAMLESS = text("team_id IS NULL")


class AnalyticsEvent(Base):
    """Every event, written by the batched consumer and read by the facade's questions.

    Every index costs each stored event a write, so there are two, both partial:
    an event goes into exactly one of them. The questions
    (services/analytics/service.py) are written for these two; the figures behind
    the choice come from bench/analytics_queries.py.
    """

    __tablename__ = "analytics_events"
    __table_args__ = (
        # A team's events by type, then time: eventCounts, usage and funnel read
        # ranges of it; with user_id and id in it, every question but usage
        # (which reads properties) is answered from the index alone.
        Index(
            "ix_analytics_events_team_covering",
            "team_id",
            "type",
            "time",
            "user_id",
            "id",
            postgresql_where=IN_A_TEAM,
            sqlite_where=IN_A_TEAM,
        ),
        # Team-less events (logins, ...) by user: those of a team's members.
        Index(
            "ix_analytics_events_teamless_user",
            "user_id",
            "time",
            "type",
            "id",
            postgresql_where=TEAMLESS,
            sqlite_where=TEAMLESS,
        ),
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


class ErasedUser(Base):
    """A user erased (user.erased): their events are stored under `anonymous_id`, also
    those a replay brings in after the erasure was read. Not emptied by a rebuild."""

    __tablename__ = "analytics_erased_users"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    anonymous_id: Mapped[str] = mapped_column(String(64))
