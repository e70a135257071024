"""Events owned by the analytics service."""

from __future__ import annotations

from typing import Any, ClassVar

from schemas.base import Audience, Event


class AnalyticsTracked(Event):
    """A product analytics event recorded for a user through `track`."""

    source: ClassVar[str] = "analytics"
    topic: ClassVar[str] = "analytics.tracked"
    key_field: ClassVar[str] = "user_id"
    audience: ClassVar[Audience] = Audience.INTERNAL
    name: str
    user_id: str
    team_id: str | None = None
    properties: dict[str, Any]


# This module's topics, in the catalog's order (schemas.CATALOG reads it).
EVENTS: tuple[type[Event], ...] = (AnalyticsTracked,)
