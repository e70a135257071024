"""Analytics consumes every catalog topic into its own store, a batch per transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    delete,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from events.dialect import insert_many, truncate, upsert
from events.envelope import Envelope
from events.handlers import BatchHandlers
from schemas import (
    CATALOG,
    AnalyticsTracked,
    Event,
    TeamMemberAdded,
    TeamMemberRemoved,
    UserErased,
    UserRegistered,
)
from services.analytics.models import AnalyticsEvent, ErasedUser, TeamMember

CONSUMER = "analytics"  # the consumer group's name: deployed state, never renamed
EVENTS: Table = AnalyticsEvent.__table__  # type: ignore[assignment]
MEMBERS: Table = TeamMember.__table__  # type: ignore[assignment]


COLUMNS = ("id", "type", "time", "source", "subject", "user_id", "team_id", "properties")


_MEMBERSHIP_EVENTS = frozenset({UserRegistered, TeamMemberAdded, TeamMemberRemoved})


def _row(envelope: Envelope, event: Event) -> tuple[Any, ...]:
    return (
        envelope.id,
        event.name if type(event) is AnalyticsTracked else envelope.type,
        envelope.time,
        envelope.source,
        envelope.subject,
        getattr(event, "user_id", None),
        getattr(event, "team_id", None),
        _properties(envelope),
    )


def _properties(envelope: Envelope) -> str:
    """The data as JSON text: the bytes as they came when they are plain UTF-8 JSON."""
    raw = envelope.raw_value
    if raw is not None and raw[:1] == b"{":
        try:
            return raw.decode()
        except UnicodeDecodeError:
            pass
    return json.dumps(envelope.data, separators=(",", ":"), ensure_ascii=False)


# What an erased user's stored event keeps: its type, time and team, for the counts.
ANONYMISED_PROPERTIES = "{}"


async def _erased_among(
    session: AsyncSession, items: Sequence[tuple[Envelope, Event]]
) -> dict[str, str]:
    """user id -> anonymous id, for the batch's users that were erased (this batch's
    erasures first recorded). Usually nobody was: one trivial query then."""
    for _, event in items:
        if type(event) is UserErased:  # by exact class, as below: cheap per event
            await forget_user(session, event.user_id, event.anonymous_id)
    if await session.scalar(select(ErasedUser.user_id).limit(1)) is None:
        return {}
    users = sorted({str(u) for _, event in items if (u := getattr(event, "user_id", None))})
    if not users:
        return {}
    chosen = select(ErasedUser.user_id, ErasedUser.anonymous_id)
    if session.get_bind().dialect.name == "postgresql":
        # One array parameter, not one bound parameter per user of a 10,000-event batch.
        matching = ErasedUser.user_id == any_(bindparam("users", users, type_=ARRAY(String)))
    else:
        matching = ErasedUser.user_id.in_(users)
    rows = await session.execute(chosen.where(matching))
    return {user_id: anonymous_id for user_id, anonymous_id in rows.all()}


def _anonymised(row: tuple[Any, ...], erased: Mapping[str, str]) -> tuple[Any, ...]:
    user_id = row[5]
    if user_id not in erased:
        return row
    anonymous = erased[user_id]
    subject = anonymous if row[4] == user_id else row[4]
    return (*row[:4], subject, anonymous, row[6], ANONYMISED_PROPERTIES)


async def forget_user(session: AsyncSession, user_id: str, anonymous_id: str) -> dict[str, int]:
    """An erased user's stored events keep their counts under the anonymous id, without
    their data; their memberships go. Changes nothing the second time."""
    known = await session.get(ErasedUser, user_id)
    if known is None:
        session.add(ErasedUser(user_id=user_id, anonymous_id=anonymous_id))
        await session.flush()
    events = await session.execute(
        update(AnalyticsEvent)
        .where(AnalyticsEvent.user_id == user_id)
        .values(
            user_id=anonymous_id,
            subject=case(
                (AnalyticsEvent.subject == user_id, anonymous_id), else_=AnalyticsEvent.subject
            ),
            properties={},
        )
    )
    members = await session.execute(delete(TeamMember).where(TeamMember.user_id == user_id))
    return {
        "events_anonymised": int(events.rowcount or 0),  # type: ignore[attr-defined]
        "memberships_removed": int(members.rowcount or 0),  # type: ignore[attr-defined]
    }


async def record_batch(session: AsyncSession, items: Sequence[tuple[Envelope, Event]]) -> int:
    """Stores each event once: the CloudEvent id is the key, so a redelivered or
    replayed event changes nothing. Memberships are followed in record order.
    An erased user's events are stored anonymised, whichever came first.
    Returns how many events were new (a replay's report counts the rest as duplicates)."""
    erased = await _erased_among(session, items)
    rows: Sequence[tuple[Any, ...]] = list(
        {envelope.id: _row(envelope, event) for envelope, event in items}.values()
    )
    if erased:  # rarely: no call per row otherwise
        rows = [_anonymised(row, erased) for row in rows]
    # Core, not the ORM's bulk path: a third of the batch's time otherwise.
    connection = await session.connection()
    stored = await insert_many(
        connection, EVENTS, COLUMNS, rows, conflict=["id"], json_text=["properties"]
    )
    changes: dict[tuple[str, str], dict[str, Any]] = {}
    for envelope, event in items:
        if erased and getattr(event, "user_id", None) in erased:
            continue  # an erased user is in no team any more
        # By exact class: events are final, and isinstance on a pydantic model
        # class goes through ABCMeta, a cost per event of a 10,000-event batch.
        if type(event) in _MEMBERSHIP_EVENTS:
            assert isinstance(event, UserRegistered | TeamMemberAdded | TeamMemberRemoved)
            change = {
                "team_id": event.team_id,
                "user_id": event.user_id,
                "active": not isinstance(event, TeamMemberRemoved),
                "changed_at": envelope.time,
            }
            member = (event.team_id, event.user_id)
            if member not in changes or _newer(change, changes[member]):
                changes[member] = change
    await upsert(
        connection,
        MEMBERS,
        # In key order: two batches written at once take row locks in the same order.
        [changes[member] for member in sorted(changes)],
        conflict=["team_id", "user_id"],
        update=["active", "changed_at"],
        # The latest change wins; at the same instant, a removal.
        when=lambda stored, proposed: or_(
            stored.changed_at < proposed.changed_at,
            and_(stored.changed_at == proposed.changed_at, stored.active > proposed.active),
        ),
    )
    # Repeats within the batch were folded into one row: they count as duplicates.
    return max(stored, 0)


def _newer(change: dict[str, Any], than: dict[str, Any]) -> bool:
    if change["changed_at"] != than["changed_at"]:
        return bool(change["changed_at"] > than["changed_at"])
    return not change["active"] and than["active"]


async def record_event(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """One event, as a batch of one."""
    await record_batch(session, [(envelope, event)])


async def clear_store(session: AsyncSession) -> None:
    """Empties analytics' tables, before a rebuild by replay (millions of rows)."""
    await truncate(session, EVENTS, MEMBERS)


# Every catalog topic, never a hand-kept list.
HANDLERS = BatchHandlers.over(CONSUMER, CATALOG.values(), record_batch)

__all__ = ["CONSUMER", "HANDLERS", "clear_store", "forget_user", "record_batch", "record_event"]
