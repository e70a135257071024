"""The notifications facade: a user's inbox, read and marked by its owner."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Integer, Select, bindparam, func, select, update

from events.db import Database
from services.errors import BadUserInput, NotFound
from services.notifications.email import EmailChannel
from services.notifications.ids import is_notification_id
from services.notifications.models import Notification
from services.principal import Caller, ExportSubject, Principal, require_self

MAX_PAGE = 100
MAX_MISSED = 1000
EXPORT_PAGE = 500  # rows read at once while an export streams


@dataclass(frozen=True, slots=True)
class NotificationView:
    id: str
    type: str
    title: str
    body: str | None
    data: dict[str, Any] | None
    created_at: datetime
    read_at: datetime | None


@functools.cache
def _page_query(after: bool, unread_only: bool) -> Select[Notification]:
    """An inbox page's statement, built once per shape (its values are bound at each
    call): building a SQLAlchemy statement costs about as much CPU as running it."""
    query = select(Notification).where(Notification.user_id == bindparam("user_id"))
    if after:
        query = query.where(Notification.id < bindparam("after"))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return query.order_by(Notification.id.desc()).limit(bindparam("first", type_=Integer))


def _view(row: Notification) -> NotificationView:
    return NotificationView(
        row.id, row.type, row.title, row.body, row.data, row.created_at, row.read_at
    )


def check_notification_id(value: str, field: str) -> str:
    if not is_notification_id(value):
        raise BadUserInput(f"{field} is not a notification id", field=field)
    return value


class NotificationsService:
    """Each caller sees and changes only their own inbox."""

    def __init__(self, db: Database, email: EmailChannel | None = None) -> None:
        self._db = db
        # The email channel, when mail can be sent (its handlers are their own group).
        self.email = email

    async def notifications(
        self,
        principal: Principal,
        first: int = 20,
        unread_only: bool = False,
        after: str | None = None,
    ) -> list[NotificationView]:
        """The caller's notifications, newest first; `after` is the last id of the previous
        page (a cursor: the next page starts just below it)."""
        if not 1 <= first <= MAX_PAGE:
            raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
        values: dict[str, Any] = {"user_id": principal.user_id, "first": first}
        if after is not None:
            values["after"] = check_notification_id(after, "after")
        query = _page_query(after is not None, unread_only)
        async with self._db.read() as session:
            rows = (await session.scalars(query, values)).all()
        return [_view(row) for row in rows]

    async def missed(
        self, principal: Principal, since: str, limit: int = MAX_MISSED
    ) -> list[NotificationView]:
        """The caller's notifications created after `since`, oldest first (recovery).

        Ids grow per user in commit order, so this is exact: nothing committed
        after `since` is missing, nothing before it is repeated.
        """
        check_notification_id(since, "since")
        query = (
            select(Notification)
            .where(Notification.user_id == principal.user_id, Notification.id > since)
            .order_by(Notification.id)
            .limit(limit)
        )
        async with self._db.read() as session:
            rows = (await session.scalars(query)).all()
        return [_view(row) for row in rows]

    async def unread_count(self, principal: Principal) -> int:
        query = select(func.count()).where(
            Notification.user_id == principal.user_id, Notification.read_at.is_(None)
        )
        async with self._db.read() as session:
            return int(await session.scalar(query) or 0)

    async def mark_read(self, principal: Principal, notification_id: str) -> bool:
        """Marks one of the caller's notifications read (again is fine); NOT_FOUND otherwise."""
        check_notification_id(notification_id, "id")
        async with self._db.transaction() as session:
            row = await session.get(Notification, notification_id)
            if row is None or row.user_id != principal.user_id:
                raise NotFound("no such notification", field="id")
            if row.read_at is None:
                row.read_at = datetime.now(UTC)
        return True

    async def mark_all_read(self, principal: Principal) -> int:
        """Marks every unread notification of the caller read; returns how many."""
        async with self._db.transaction() as session:
            result = await session.execute(
                update(Notification)
                .where(Notification.user_id == principal.user_id, Notification.read_at.is_(None))
                .values(read_at=datetime.now(UTC))
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def export_notifications(
        self, caller: Caller, of: ExportSubject
    ) -> AsyncIterator[NotificationView]:
        """Every notification of the user, oldest first, a page at a time (an inbox can
        be long: the archive streams it)."""
        require_self(caller, of.user_id)
        last: str | None = None
        while True:
            query = select(Notification).where(Notification.user_id == of.user_id)
            if last is not None:
                query = query.where(Notification.id > last)
            async with self._db.read() as session:
                rows = (
                    await session.scalars(query.order_by(Notification.id).limit(EXPORT_PAGE))
                ).all()
            for row in rows:
                yield _view(row)
            if len(rows) < EXPORT_PAGE:
                return
            last = rows[-1].id
