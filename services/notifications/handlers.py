"""Notifications consumes requests and the domain events worth telling someone about.

For each it decides the recipients (a user, or members of a team from its own
read model of memberships), adds one inbox row per recipient and publishes
`notification.created` for each, in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.consumer import EventHandler
from events.dialect import insert_ignore
from events.envelope import Envelope
from events.handlers import Handlers
from events.outbox import add_event
from schemas import (
    CATALOG,
    Event,
    NotificationCreated,
    NotificationRequested,
    TeamMemberAdded,
    TeamMemberRemoved,
    TeamRoleChanged,
    UserErased,
    UserRegistered,
)
from services.notifications.ids import encode, next_id
from services.notifications.models import (
    EmailDelivery,
    ErasedUser,
    Inbox,
    KnownDevice,
    Notification,
    TeamMember,
    TeamNotificationLog,
)
from services.notifications.templates import TEMPLATES, Recipients, Rendered, render, requested
from services.principal import ROLE_PERMISSIONS

CONSUMER = "notifications"  # the consumer group's name: deployed state, never renamed
HANDLERS = Handlers(CONSUMER)
# Only the membership read model (a replay target): a rebuild must not notify anyone twice.
MEMBERSHIPS = Handlers("notifications.memberships")
_ZERO_ID = encode(0)
# How long a team-addressed notification waits for a member whose membership event is
# handled after it (topics have no order between them; consumer lag bounds the gap).
TEAM_LOG_RETENTION = timedelta(days=7)


def _follows_memberships(*events: type[Event]) -> Callable[[EventHandler], EventHandler]:
    """Registered before the notifying handlers: a new member is told of the same event."""

    def register(handler: EventHandler) -> EventHandler:
        return HANDLERS.on(*events)(MEMBERSHIPS.on(*events)(handler))

    return register


@_follows_memberships(UserRegistered)
async def on_registered(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    assert isinstance(event, UserRegistered)
    await _change_member(session, event.team_id, event.user_id, "owner", True, envelope.time)


@_follows_memberships(TeamMemberAdded, TeamRoleChanged)
async def on_member_role(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    assert isinstance(event, TeamMemberAdded | TeamRoleChanged)
    await _change_member(session, event.team_id, event.user_id, event.role, True, envelope.time)


@_follows_memberships(TeamMemberRemoved)
async def on_member_removed(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    assert isinstance(event, TeamMemberRemoved)
    await _change_member(session, event.team_id, event.user_id, None, False, envelope.time)


async def forget_user(session: AsyncSession, user_id: str) -> dict[str, int]:
    """An erased user's inbox, known devices and mail log go (their team memberships
    were removed by team.member_removed), and they are marked erased. Changes nothing
    the second time."""
    counts = {}
    for name, table, column in (
        ("notifications_deleted", Notification, Notification.user_id),
        ("inboxes_deleted", Inbox, Inbox.user_id),
        ("devices_deleted", KnownDevice, KnownDevice.user_id),
        ("mail_log_deleted", EmailDelivery, EmailDelivery.recipient),
    ):
        deleted = await session.execute(delete(table).where(column == user_id))
        counts[name] = int(deleted.rowcount or 0)  # type: ignore[attr-defined]
    # Their additions may still be handled later (another topic, a replay): the mark
    # keeps the team log from catching an erased user up (an id, as inboxes held).
    await insert_ignore(
        session,
        ErasedUser.__table__,  # type: ignore[arg-type]
        [{"user_id": user_id, "erased_at": datetime.now(UTC)}],
        conflict=["user_id"],
    )
    return counts


@HANDLERS.on(UserErased)
async def on_erased(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    assert isinstance(event, UserErased)
    await forget_user(session, event.user_id)


@HANDLERS.on(NotificationRequested)
async def on_requested(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """Another service asked for a notification: it says what it was asked to say."""
    assert isinstance(event, NotificationRequested)
    rendered = requested(event.type, event.title, event.body, event.data)
    if event.user_id is not None:
        recipients: list[str] = [event.user_id]
    else:
        recipients = await team_members(session, event.team_id or "")
        if event.team_id:
            await log_for_team(session, event.team_id, None, rendered, envelope)
    await add_to_inboxes(session, recipients, rendered, envelope.id)


@HANDLERS.on(*(CATALOG[topic] for topic in TEMPLATES))
async def on_templated(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """A domain event with a template notifies whoever the template names."""
    rendered = render(envelope.type, event)
    if rendered is None:
        return
    kind = TEMPLATES[envelope.type].recipients
    recipients = await recipients_of(session, kind, event)
    if kind is not Recipients.USER:
        permission = "billing:read" if kind is Recipients.TEAM_BILLING else None
        await log_for_team(session, event.team_id, permission, rendered, envelope)  # type: ignore[attr-defined]
    await add_to_inboxes(session, recipients, rendered, envelope.id)


@HANDLERS.on(UserRegistered, TeamMemberAdded, TeamRoleChanged)
async def on_joined(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """Runs after the membership change (registered later): a member whose membership
    event came after a team's notification still gets it. Not in MEMBERSHIPS: a
    rebuild of the read model notifies no one."""
    assert isinstance(event, UserRegistered | TeamMemberAdded | TeamRoleChanged)
    await catch_up(session, event.team_id, event.user_id, envelope.time)


async def log_for_team(
    session: AsyncSession,
    team_id: str,
    permission: str | None,
    rendered: Rendered,
    envelope: Envelope,
) -> None:
    """Keeps a team's notification for members whose membership event comes later, in
    the same transaction as the delivery; drops entries past TEAM_LOG_RETENTION."""
    await session.execute(
        delete(TeamNotificationLog).where(
            TeamNotificationLog.event_time < datetime.now(UTC) - TEAM_LOG_RETENTION
        )
    )
    await insert_ignore(
        session,
        TeamNotificationLog.__table__,  # type: ignore[arg-type]
        [
            {
                "team_id": team_id,
                "event_id": envelope.id,
                "event_time": envelope.time,
                "permission": permission,
                "type": rendered.type,
                "title": rendered.title,
                "body": rendered.body,
                "data": rendered.data,
            }
        ],
        conflict=["team_id", "event_id"],
    )


async def catch_up(session: AsyncSession, team_id: str, user_id: str, at: datetime) -> list[str]:
    """Delivers to the user the team's logged notifications of events at or after `at`
    that their role may read, when the change made at `at` is the member's latest and
    leaves them active (a later removal wins), and never to an erased user. Once per (event, user):
    add_to_inboxes skips what the user already has, so a redelivery adds nothing."""
    await session.flush()
    member = await session.get(TeamMember, (team_id, user_id))
    if member is None or not member.active or member.changed_at != at:
        return []
    if await session.get(ErasedUser, user_id) is not None:
        return []
    granted = ROLE_PERMISSIONS.get(member.role, frozenset())
    entries = await session.scalars(
        select(TeamNotificationLog)
        .where(TeamNotificationLog.team_id == team_id, TeamNotificationLog.event_time >= at)
        .order_by(TeamNotificationLog.event_time, TeamNotificationLog.event_id)
    )
    created: list[str] = []
    for entry in list(entries):
        if entry.permission is not None and entry.permission not in granted:
            continue
        rendered = Rendered(entry.type, entry.title, entry.body, entry.data)
        created += await add_to_inboxes(session, [user_id], rendered, entry.event_id)
    return created


async def _change_member(
    session: AsyncSession,
    team_id: str,
    user_id: str,
    role: str | None,
    active: bool,
    at: datetime,
) -> None:
    """Applies a membership change made at `at`, unless a later one is already there:
    additions, role changes and removals come on different topics, in any order."""
    member = await session.get(TeamMember, (team_id, user_id))
    if member is None:
        role = role or "member"
        session.add(
            TeamMember(team_id=team_id, user_id=user_id, role=role, active=active, changed_at=at)
        )
        return
    # Latest change wins; at the same instant a removal beats an addition.
    if at < member.changed_at or (at == member.changed_at and active and not member.active):
        return
    member.active, member.changed_at = active, at
    if role is not None:
        member.role = role


async def team_members(
    session: AsyncSession, team_id: str, permission: str | None = None
) -> list[str]:
    rows = (
        await session.execute(
            select(TeamMember.user_id, TeamMember.role).where(
                TeamMember.team_id == team_id, TeamMember.active.is_(True)
            )
        )
    ).all()
    return [
        user_id
        for user_id, role in rows
        if permission is None or permission in ROLE_PERMISSIONS.get(role, frozenset())
    ]


async def recipients_of(session: AsyncSession, recipients: Recipients, event: Event) -> list[str]:
    if recipients is Recipients.USER:
        return [event.user_id]  # type: ignore[attr-defined]
    team_id: str = event.team_id  # type: ignore[attr-defined]
    if recipients is Recipients.TEAM_BILLING:
        return await team_members(session, team_id, "billing:read")
    return await team_members(session, team_id)


async def add_to_inboxes(
    session: AsyncSession,
    user_ids: Iterable[str],
    rendered: Rendered,
    source_event_id: str,
    now: datetime | None = None,
) -> list[str]:
    """Adds the notification to each user's inbox once; returns the new notification ids."""
    wanted = sorted(set(user_ids))
    if not wanted:
        return []
    already = set(
        await session.scalars(
            select(Notification.user_id).where(
                Notification.source_event_id == source_event_id,
                Notification.user_id.in_(wanted),
            )
        )
    )
    wanted = [user_id for user_id in wanted if user_id not in already]
    if not wanted:
        return []
    inboxes = await _lock_inboxes(session, wanted)
    now = now or datetime.now(UTC)
    created: list[str] = []
    for user_id in wanted:
        inbox = inboxes[user_id]
        inbox.last_id = notification_id = next_id(now, inbox.last_id)
        session.add(
            Notification(
                id=notification_id,
                user_id=user_id,
                type=rendered.type,
                title=rendered.title,
                body=rendered.body,
                data=rendered.data,
                source_event_id=source_event_id,
                created_at=now,
            )
        )
        add_event(
            session,
            NotificationCreated(
                notification_id=notification_id,
                user_id=user_id,
                type=rendered.type,
                title=rendered.title,
                body=rendered.body,
                data=rendered.data,
                created_at=now,
            ),
            # The same (source event, recipient) gives the same event id: when a restore
            # replays the source event, analytics and other consumers see a duplicate.
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source_event_id}/{user_id}")),
        )
        created.append(notification_id)
    return created


async def _lock_inboxes(session: AsyncSession, user_ids: Sequence[str]) -> dict[str, Inbox]:
    """Each user's inbox row, created if missing, locked until commit (PostgreSQL; SQLite
    has one writer at a time), in id order so that two transactions never deadlock."""
    await insert_ignore(
        session,
        Inbox.__table__,  # type: ignore[arg-type]
        [{"user_id": user_id, "last_id": _ZERO_ID} for user_id in user_ids],
        conflict=["user_id"],
    )
    rows = await session.scalars(
        select(Inbox)
        .where(Inbox.user_id.in_(list(user_ids)))
        .order_by(Inbox.user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {inbox.user_id: inbox for inbox in rows}


__all__ = ["CONSUMER", "HANDLERS", "MEMBERSHIPS", "add_to_inboxes", "forget_user"]
