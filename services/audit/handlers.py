"""Audit projects every auth, team, key, billing and flag-change event into an entry.

Entries are a function of the event alone (its id, time and fields), so a rebuild
(`haunted replay audit --rebuild`) writes the same rows as the live group, in any
order it reads the partitions. Which team's log shows a user's own event is decided
when the log is read, from the membership stretches, for the same reason.
"""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from events.envelope import Envelope
from events.handlers import Handlers
from schemas import (
    CATALOG,
    DataExportRequested,
    Event,
    FlagUpdated,
    InviteCreated,
    TeamCreated,
    TeamMemberAdded,
    TeamMemberRemoved,
    UserErased,
)
from services.audit.models import AuditEntry, AuditMembership

CONSUMER = "audit"  # the consumer group's name: deployed state, never renamed
HANDLERS = Handlers(CONSUMER)

# What is audited: everything auth and billing publish, and flag changes (not the
# evaluation counts flags also publish).
AUDITED: tuple[type[Event], ...] = tuple(
    model
    for model in CATALOG.values()
    if model.source in ("auth", "billing") or model is FlagUpdated
)
# The field naming what an event acted on, by preference.
_TARGETS = (
    ("invite_id", "invite"),
    ("api_key_id", "api_key"),
    ("subscription_id", "subscription"),
    ("invoice_id", "invoice"),
    ("flag", "flag"),
    ("session_id", "session"),
    ("user_id", "user"),
    ("team_id", "team"),
)


def target_of(event: Event) -> str | None:
    for field, kind in _TARGETS:
        value = getattr(event, field, None)
        if value is not None:
            return f"{kind}:{value}"
    return None


def actor_of(event: Event) -> str | None:
    """Who did it: the event's actor, else what its fields imply; None for the system
    (a payment provider's webhook, a flag server)."""
    explicit = getattr(event, "actor_id", None)
    if explicit is not None:
        return str(explicit)
    if isinstance(event, InviteCreated):
        return event.invited_by
    if isinstance(event, TeamCreated):
        return event.owner_id
    if isinstance(event, DataExportRequested) and event.via == "operator":
        return None  # an operator's `haunted privacy export`, not the user's own act
    if event.source == "auth":
        user_id = getattr(event, "user_id", None)  # their own act (joining, signing in)
        return str(user_id) if user_id is not None else None
    return None


@HANDLERS.on(TeamMemberAdded)
async def on_member_added(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    assert isinstance(event, TeamMemberAdded)
    session.add(
        AuditMembership(team_id=event.team_id, user_id=event.user_id, joined_at=envelope.time)
    )


@HANDLERS.on(TeamMemberRemoved)
async def on_member_removed(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    assert isinstance(event, TeamMemberRemoved)
    await session.execute(
        update(AuditMembership)
        .where(
            AuditMembership.team_id == event.team_id,
            AuditMembership.user_id == event.user_id,
            AuditMembership.left_at.is_(None),
        )
        .values(left_at=envelope.time)
    )


@HANDLERS.on(*AUDITED)
async def on_audited(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    team_id = getattr(event, "team_id", None)
    user_id = getattr(event, "user_id", None)
    if team_id is None and user_id is None and not isinstance(event, FlagUpdated):
        return  # about nobody's account (a sign-in with an unknown address): no team's
    session.add(
        AuditEntry(
            event_id=envelope.id,
            team_id=team_id,
            # A team's event is in that team's log; the user matters only without one.
            user_id=None if team_id is not None else user_id,
            actor_id=actor_of(event),
            action=envelope.type,
            target=target_of(event),
            occurred_at=envelope.time,
            client=getattr(event, "device", None),
        )
    )


async def forget_user(session: AsyncSession, user_id: str) -> dict[str, int]:
    """The log keeps an erased user's entries (who did what stays accountable, by an id
    that now names nobody) but drops their devices' fingerprints."""
    entries = await session.execute(
        update(AuditEntry)
        .where(
            (AuditEntry.user_id == user_id) | (AuditEntry.actor_id == user_id),
            AuditEntry.client.is_not(None),
        )
        .values(client=None)
    )
    return {"device_fingerprints_dropped": int(entries.rowcount or 0)}  # type: ignore[attr-defined]


@HANDLERS.on(UserErased)
async def on_erased(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    assert isinstance(event, UserErased)
    await forget_user(session, event.user_id)


async def clear_store(session: AsyncSession) -> None:
    """Empties the audit log and its memberships, before a rebuild by replay."""
    await session.execute(delete(AuditEntry))
    await session.execute(delete(AuditMembership))


__all__ = [
    "AUDITED",
    "CONSUMER",
    "HANDLERS",
    "actor_of",
    "clear_store",
    "forget_user",
    "target_of",
]
