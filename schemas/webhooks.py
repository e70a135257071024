"""Events owned by the webhooks service."""

from __future__ import annotations

from typing import ClassVar, Literal

from schemas.base import Audience, Event


class WebhookEndpointChanged(Event):
    """A team's webhook endpoint was created, changed, deleted, given a new secret, or
    disabled after failing for days (by_user_id absent). Neither the URL (it may carry
    a token) nor any secret travels."""

    source: ClassVar[str] = "webhooks"
    topic: ClassVar[str] = "webhook.endpoint_changed"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.TEAM
    push_permission: ClassVar[str] = "webhooks:manage"
    team_id: str
    endpoint_id: str
    change: Literal["created", "updated", "deleted", "secret_rotated", "disabled"]
    enabled: bool
    by_user_id: str | None = None


# This module's topics, in the catalog's order (schemas.CATALOG reads it).
EVENTS: tuple[type[Event], ...] = (WebhookEndpointChanged,)
