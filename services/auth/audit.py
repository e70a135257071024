"""Audit lines for auth events: one `haunted.audit` log line per auth event, once
its transaction has committed (a rolled-back attempt left no trace, so it gets
no line). Only ids and codes are logged: never an email, a secret or a sealed
value, whatever an event may carry."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession

from events.envelope import Envelope
from events.outbox import add_event
from schemas import Event

audit = structlog.get_logger("haunted.audit")
_LOGGED = ("reason", "attempt", "role", "method", "scopes", "enabled")


def _fields(event: Event) -> dict[str, Any]:
    return {
        name: value
        for name, value in event.payload().items()
        if (name.endswith("_id") or name in _LOGGED) and not isinstance(value, dict | list)
    }


def add_audited_event(
    session: AsyncSession, event: Event, *, event_id: str | None = None
) -> Envelope:
    """`add_event`, plus the audit line written after the commit."""
    envelope = add_event(session, event, event_id=event_id)
    fields = _fields(event)

    def committed(_session: Any) -> None:
        audit.info(event.topic, event_id=envelope.id, **fields)

    orm_event.listen(session.sync_session, "after_commit", committed, once=True)
    return envelope
