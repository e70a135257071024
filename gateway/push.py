"""Pushes each event to the connections that may see it (events.md: Audience).

The fan-out consumer hands every pushable event to `PushHub.deliver`, which
feeds both the Socket.IO rooms and the GraphQL subscriptions of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any

import socketio
import structlog

from events.envelope import Envelope
from schemas import Audience, Event, NotificationCreated, SessionRevoked, UserLoggedOut
from services.principal import Principal

log = structlog.get_logger(__name__)

AUTHENTICATED_ROOM = "authenticated"
_QUEUE_LIMIT = 1000


def user_room(user_id: str) -> str:
    return f"user:{user_id}"


def team_room(team_id: str) -> str:
    return f"team:{team_id}"


def session_room(session_id: str) -> str:
    return f"session:{session_id}"


def rooms_for(event: Event) -> list[str]:
    """The Socket.IO rooms an event goes to; none for internal events."""
    audience = type(event).audience
    if audience is Audience.USER:
        return [user_room(event.user_id)]  # type: ignore[attr-defined]
    if audience is Audience.TEAM:
        return [team_room(event.team_id)]  # type: ignore[attr-defined]
    if audience is Audience.PUBLIC:
        return [AUTHENTICATED_ROOM]
    return []


def may_see(principal: Principal, event: Event) -> bool:
    audience = type(event).audience
    if audience is Audience.USER:
        return principal.user_id == getattr(event, "user_id", None)
    if audience is Audience.TEAM:
        return getattr(event, "team_id", None) in principal.teams
    return audience is Audience.PUBLIC


def notification_payload(event: NotificationCreated) -> dict[str, Any]:
    """A notification in the Notification shape of schema.graphql."""
    return {
        "id": event.notification_id,
        "type": event.type,
        "title": event.title,
        "body": event.body,
        "data": event.data,
        "createdAt": event.created_at.isoformat().replace("+00:00", "Z"),
        "readAt": None,
    }


@dataclass(eq=False)
class _Listener:
    principal: Principal
    types: frozenset[str] | None
    queue: asyncio.Queue[Envelope | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=_QUEUE_LIMIT)
    )


class PushHub:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self._listeners: set[_Listener] = set()

    async def deliver(self, envelope: Envelope) -> None:
        event = envelope.decode()
        rooms = rooms_for(event)
        if rooms:
            await self._sio.emit(envelope.type, envelope.to_push(), room=rooms)
        if isinstance(event, NotificationCreated):
            await self._sio.emit("notification", notification_payload(event), room=rooms)
        for listener in list(self._listeners):
            if (listener.types is None or envelope.type in listener.types) and may_see(
                listener.principal, event
            ):
                self._offer(listener, envelope)
        if isinstance(event, UserLoggedOut | SessionRevoked):
            await self._end_sessions(event)

    def _offer(self, listener: _Listener, envelope: Envelope) -> None:
        try:
            listener.queue.put_nowait(envelope)
        except asyncio.QueueFull:
            # A subscriber this far behind is gone or stuck: end it rather than grow.
            log.warning("subscription dropped: too far behind", user_id=listener.principal.user_id)
            self._listeners.discard(listener)
            with contextlib.suppress(asyncio.QueueEmpty):
                listener.queue.get_nowait()
            listener.queue.put_nowait(None)

    async def _end_sessions(self, event: UserLoggedOut | SessionRevoked) -> None:
        """A logged-out or revoked session loses its sockets and its subscriptions."""
        ended_session = event.session_id
        room = session_room(ended_session) if ended_session else user_room(event.user_id)
        for sid in list(self._sio.manager.get_participants("/", room)):
            await self._sio.disconnect(sid[0] if isinstance(sid, tuple) else sid)
        for listener in list(self._listeners):
            principal = listener.principal
            if principal.user_id == event.user_id and ended_session in (None, principal.session_id):
                self._listeners.discard(listener)
                listener.queue.put_nowait(None)

    async def listen(
        self, principal: Principal, types: Collection[str] | None = None
    ) -> AsyncIterator[Envelope]:
        """The events `principal` may see, as they arrive, until the session ends."""
        listener = _Listener(principal, frozenset(types) if types is not None else None)
        self._listeners.add(listener)
        try:
            while (envelope := await listener.queue.get()) is not None:
                yield envelope
        finally:
            self._listeners.discard(listener)

    @property
    def listener_count(self) -> int:
        return len(self._listeners)
