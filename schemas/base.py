"""The base of every event contract: a typed payload that knows its topic."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, PlainSerializer

# Fields that carry values sealed with the PII key ring, for the services holding it (the
# email channel): kept off what clients are pushed, though nobody could open them.
SEALED_FIELDS = frozenset({"address_key_id", "sealed_address", "code_key_id", "sealed_code"})


class Audience(StrEnum):
    """Who may see an event pushed to clients (events.md: Audience)."""

    USER = "user"
    TEAM = "team"
    PUBLIC = "public"
    INTERNAL = "internal"


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# Times travel as RFC 3339 UTC strings; they must carry a zone on the way in.
Timestamp = Annotated[AwareDatetime, PlainSerializer(_rfc3339, return_type=str)]


class Event(BaseModel):
    """One fact, as published on its topic.

    Subclasses declare where they go with class variables; the fields are the
    CloudEvent's `data`. Unknown fields are ignored on the way in so that a
    topic may gain fields without breaking older consumers.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    topic: ClassVar[str]
    source: ClassVar[str]  # the service that owns the topic, e.g. "auth"
    key_field: ClassVar[str]
    audience: ClassVar[Audience]
    # A `team` or `public` topic's permission: who may see it pushed holds it in the
    # event's team (gateway/push.py reads it). None: pushed to nobody outside its audience.
    push_permission: ClassVar[str | None] = None
    version: ClassVar[int] = 1

    def key(self) -> str:
        """The partition key: records with one key keep their order."""
        value = getattr(self, self.key_field)
        return str(value) if value is not None else "unknown"

    @classmethod
    def dataschema(cls) -> str:
        return f"urn:haunted:{cls.topic}:v{cls.version}"

    def payload(self) -> dict[str, Any]:
        """The JSON-ready payload; optional fields left unset are omitted."""
        return self.model_dump(mode="json", exclude_none=True)
