"""Tables only the notifications service touches: inboxes and its view of team memberships."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, text, true
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base


class Notification(Base):
    """One notification in one user's inbox."""

    __tablename__ = "notifications"
    __table_args__ = (
        # A redelivered or replayed event never lands twice in an inbox.
        UniqueConstraint("source_event_id", "user_id"),
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)  # ids.py: grows per user
    user_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    source_event_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    read_at: Mapped[datetime | None] = mapped_column()


class Inbox(Base):
    """Each user's last notification id: the row that orders a user's notifications.

    Locking it while a notification is added makes ids grow in commit order.
    """

    __tablename__ = "notification_inboxes"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[str] = mapped_column(String(26))


class TeamMember(Base):
    """Notifications' own read model of memberships, built from auth events.

    Additions, role changes and removals come on different topics, so they may
    arrive (or be replayed) in any order: the latest change by event time wins,
    and a removal stays as a tombstone (`active` false) so that an older
    addition read later cannot revive it. A rebuild therefore equals live.
    """

    __tablename__ = "notification_team_members"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    changed_at: Mapped[datetime] = mapped_column(server_default=text("'1970-01-01 00:00:00+00:00'"))


class EmailDelivery(Base):
    """One email sent for one event to one recipient (a user id, or "invite:<id>"):
    written with the event's processed mark, so a redelivered event sends nothing."""

    __tablename__ = "email_deliveries"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    recipient: Mapped[str] = mapped_column(String(100), primary_key=True)
    template: Mapped[str] = mapped_column(String(50))
    sent_at: Mapped[datetime] = mapped_column()


class KnownDevice(Base):
    """Devices (keyed hashes from user.logged_in) a user has signed in from: a new one
    is told to the owner by email."""

    __tablename__ = "email_known_devices"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column()


class TeamNotificationLog(Base):
    """A team-addressed notification as rendered, kept for a while after its event.

    Memberships come on other topics than the events that notify a team, in any
    order: when a membership event is handled after the notifying event, the new
    member gets the logged notifications of events at or after their membership
    started (see handlers.catch_up). Only what the inbox rows already hold, no user.
    """

    __tablename__ = "notification_team_log"
    __table_args__ = (
        Index("ix_notification_team_log_team_id_event_time", "team_id", "event_time"),
    )

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_time: Mapped[datetime] = mapped_column(index=True)
    # The permission a recipient's role must grant (None: every member).
    permission: Mapped[str | None] = mapped_column(String(50))
    type: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ErasedUser(Base):
    """A user erased (user.erased): their additions handled later catch them up on nothing."""

    __tablename__ = "notification_erased_users"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column()
