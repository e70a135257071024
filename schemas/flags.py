"""Events owned by the feature flags service."""

from __future__ import annotations

from typing import ClassVar

from schemas.base import Audience, Event


class _FlagEvent(Event):
    source: ClassVar[str] = "flags"
    key_field: ClassVar[str] = "flag"


class FlagEvaluated(_FlagEvent):
    """Evaluations of one flag with one outcome, folded into one record."""

    topic: ClassVar[str] = "flag.evaluated"
    audience: ClassVar[Audience] = Audience.INTERNAL
    flag: str
    enabled: bool
    variant: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    count: int


class FlagUpdated(_FlagEvent):
    """A flag's definition changed at its source."""

    topic: ClassVar[str] = "flag.updated"
    audience: ClassVar[Audience] = Audience.PUBLIC
    push_permission: ClassVar[str] = "flags:read"
    flag: str
    enabled: bool


# This module's topics, in the catalog's order (schemas.CATALOG reads it).
EVENTS: tuple[type[Event], ...] = (
    FlagEvaluated,
    FlagUpdated,
)
