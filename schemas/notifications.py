"""Events owned by the notifications service."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import model_validator

from schemas.base import Audience, Event, Timestamp


class NotificationRequested(Event):
    """Any service asks for a user, or every member of a team, to be notified."""

    source: ClassVar[str] = "notifications"
    topic: ClassVar[str] = "notification.requested"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.INTERNAL
    user_id: str | None = None
    team_id: str | None = None
    type: str
    title: str
    body: str | None = None
    data: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_recipient(self) -> NotificationRequested:
        if (self.user_id is None) == (self.team_id is None):
            raise ValueError("exactly one of user_id and team_id is required")
        return self

    def key(self) -> str:
        return self.user_id or self.team_id or "unknown"


class NotificationCreated(Event):
    """A notification landed in a user's inbox."""

    source: ClassVar[str] = "notifications"
    topic: ClassVar[str] = "notification.created"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.USER
    notification_id: str
    user_id: str
    type: str
    title: str
    body: str | None = None
    data: dict[str, Any] | None = None
    created_at: Timestamp


# This module's topics, in the catalog's order (schemas.CATALOG reads it).
EVENTS: tuple[type[Event], ...] = (
    NotificationRequested,
    NotificationCreated,
)
