"""The audit facade: a team's log, newest first, for holders of audit:read."""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, or_, select

from events.db import Database
from services.audit.models import AuditEntry, AuditMembership
from services.errors import BadUserInput
from services.principal import Caller, ExportSubject, Principal, require_self, requires

MAX_PAGE = 200
EXPORT_PAGE = 500  # rows read at once while an export streams


@dataclass(frozen=True, slots=True)
class AuditEntryExport:
    """An entry about the user: one they acted in, or one about their account."""

    id: str  # the event's id
    action: str
    team_id: str | None
    actor_id: str | None
    target: str | None
    time: datetime
    client: str | None


@dataclass(frozen=True, slots=True)
class AuditEntryView:
    id: str  # the event's id
    action: str  # the event's type
    actor_id: str | None
    target: str | None
    time: datetime
    client: str | None


@dataclass(frozen=True, slots=True)
class AuditLogPage:
    entries: list[AuditEntryView]
    next_cursor: str | None  # `after` for the next (older) page; None on the last


def _cursor(entry: AuditEntry) -> str:
    raw = f"{entry.occurred_at.isoformat()}|{entry.event_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode("ascii")


def _position(cursor: str) -> tuple[datetime, str]:
    try:
        moment, _, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        at = datetime.fromisoformat(moment)
    except (binascii.Error, UnicodeError, ValueError):
        raise BadUserInput("after is not a cursor of this log", field="after") from None
    if not event_id or at.tzinfo is None:
        raise BadUserInput("after is not a cursor of this log", field="after")
    return at, event_id


class AuditService:
    def __init__(self, db: Database) -> None:
        self._db = db

    @requires("audit:read")
    async def log(
        self,
        principal: Principal,
        first: int = 50,
        after: str | None = None,
        *,
        team_id: str | None = None,
    ) -> AuditLogPage:
        """The team's entries, newest first: its own events, its members' own events
        from while they were members (kept after they leave), and global changes."""
        if not 1 <= first <= MAX_PAGE:
            raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
        member_then = exists().where(
            AuditMembership.team_id == team_id,
            AuditMembership.user_id == AuditEntry.user_id,
            AuditMembership.joined_at <= AuditEntry.occurred_at,
            or_(
                AuditMembership.left_at.is_(None),
                AuditMembership.left_at > AuditEntry.occurred_at,
            ),
        )
        query = select(AuditEntry).where(
            or_(
                AuditEntry.team_id == team_id,
                and_(AuditEntry.team_id.is_(None), AuditEntry.user_id.is_(None)),
                and_(AuditEntry.team_id.is_(None), member_then),
            )
        )
        if after is not None:
            at, event_id = _position(after)
            query = query.where(
                or_(
                    AuditEntry.occurred_at < at,
                    and_(AuditEntry.occurred_at == at, AuditEntry.event_id < event_id),
                )
            )
        query = query.order_by(AuditEntry.occurred_at.desc(), AuditEntry.event_id.desc())
        async with self._db.read() as session:
            rows = list((await session.scalars(query.limit(first + 1))).all())
        more = len(rows) > first
        rows = rows[:first]
        return AuditLogPage(
            [
                AuditEntryView(
                    row.event_id, row.action, row.actor_id, row.target, row.occurred_at, row.client
                )
                for row in rows
            ],
            _cursor(rows[-1]) if more and rows else None,
        )

    async def export_entries(
        self, caller: Caller, of: ExportSubject
    ) -> AsyncIterator[AuditEntryExport]:
        """Every entry the user acted in or that is about their account, oldest first,
        streamed: what the log keeps about them, whichever team's log shows it."""
        require_self(caller, of.user_id)
        about = or_(
            AuditEntry.actor_id == of.user_id,
            AuditEntry.user_id == of.user_id,
            AuditEntry.target == f"user:{of.user_id}",
        )
        after: tuple[datetime, str] | None = None
        while True:
            query = select(AuditEntry).where(about)
            if after is not None:
                query = query.where(
                    or_(
                        AuditEntry.occurred_at > after[0],
                        and_(AuditEntry.occurred_at == after[0], AuditEntry.event_id > after[1]),
                    )
                )
            query = query.order_by(AuditEntry.occurred_at, AuditEntry.event_id).limit(EXPORT_PAGE)
            async with self._db.read() as session:
                rows = (await session.scalars(query)).all()
            for row in rows:
                yield AuditEntryExport(
                    row.event_id,
                    row.action,
                    row.team_id,
                    row.actor_id,
                    row.target,
                    row.occurred_at,
                    row.client,
                )
            if len(rows) < EXPORT_PAGE:
                return
            after = (rows[-1].occurred_at, rows[-1].event_id)
