"""Tables only the audit service touches: the entries, and its view of memberships."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base


class AuditEntry(Base):
    """One audited event. A team's event has its team; a user's own event (sign-in,
    password change...) has no team but its user, and belongs to the log of every team
    the user was a member of at that time (see `AuditMembership`); a global one (a flag
    change) has neither and belongs to every team's log."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_team_time", "team_id", "occurred_at", "event_id"),
        Index("ix_audit_entries_user_time", "user_id", "occurred_at"),
    )

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column()
    # A keyed hash of the client (never its address), where the event has one.
    client: Mapped[str | None] = mapped_column(String(64))


class AuditMembership(Base):
    """A stretch of one user's membership of one team, [joined_at, left_at), from the
    team's own events (one key, so read in order, live and in a rebuild alike)."""

    __tablename__ = "audit_memberships"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    joined_at: Mapped[datetime] = mapped_column(primary_key=True)
    left_at: Mapped[datetime | None] = mapped_column()
