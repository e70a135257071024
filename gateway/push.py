"""Pushes each event to the connections that may see it (events.md: Audience).

The fan-out consumer hands every pushable event to `PushHub.deliver`, which
feeds both the Socket.IO rooms and the GraphQL subscriptions of this process.

Socket.IO connections go through three steps, all in the hub:
- open: rooms joined, but live events for it are buffered, not sent;
- catch-up: `connection_ready`, then with `since` the missed notifications
  read from the notifications facade, in order;
- live: the buffer is flushed, and from then on events go out as they come.
Each connection remembers the highest notification id it was sent, and a
notification at or below it is never sent again (its push may still be on
its way from the broker after the catch-up read it): no gap, no duplicate.
A user's notification ids grow in the order their pushes arrive (one key,
one partition), so that mark is all it takes.

Authorisation is live (events.md: Audience): each connection and subscription
holds its principal's current roles, which the membership events keep up to
date (`team.member_added`, `team.role_changed`, `team.member_removed`), and
every push passes the recipient's permissions in the event's team (billing
events need billing:read, and so on; an API key only what its scopes allow).
`user.logged_out`, `session.revoked` and `api_key.revoked` end the
connections, subscriptions and GraphQL WebSockets they concern. While the
view cannot be trusted (the broker does not answer, or events arrive late),
each push re-resolves its recipients from the session store, and a sweep
re-resolves every connection each `recheck_interval_s`.

Limits: a connection whose outgoing queue (Engine.IO's, per connection)
grows past `max_queued_packets` is dropped with its queue, so one slow
client costs bounded memory and never holds the others back; it reconnects
and recovers with `since`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import socketio
import structlog
from opentelemetry import trace
from prometheus_client import Counter, Gauge
from redis.asyncio import Redis

from events.envelope import Envelope
from schemas import (
    CATALOG,
    ApiKeyRevoked,
    Audience,
    Event,
    NotificationCreated,
    SessionRevoked,
    TeamMemberAdded,
    TeamMemberRemoved,
    TeamRoleChanged,
    UserLoggedOut,
)
from services.errors import BadUserInput, Unauthenticated
from services.notifications import NotificationsService, NotificationView
from services.principal import ROLE_PERMISSIONS, Principal

log = structlog.get_logger(__name__)
# Pushes are spans of the trace the event carried (the fan-out's process span).
TRACER = trace.get_tracer("haunted.gateway.push")

AUTHENTICATED_ROOM = "authenticated"
NAMESPACE = "/"

CONNECTIONS = Gauge("haunted_socketio_connections", "Socket.IO connections of this process")
REFUSED = Counter("haunted_socketio_refused_total", "Socket.IO connections refused", ["reason"])
SLOW_DISCONNECTS = Counter(
    "haunted_socketio_slow_disconnects_total",
    "Socket.IO connections dropped because their outgoing queue overflowed",
)
UNTRUSTED_PUSHES = Counter(
    "haunted_push_rechecked_total",
    "Pushes whose recipients were re-resolved from the session store (view not trusted)",
)
RECOVERED = Counter(
    "haunted_socketio_recovered_notifications_total",
    "Missed notifications sent on reconnection with since",
)


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


# The permission a recipient needs in the event's team to be pushed a `team` event, and
# an API key to be pushed a `public` one (events.md: Audience), as each model declares it
# (`push_permission`). A pushable topic without one goes to nobody: the map fails closed,
# and a test holds every `team` and `public` topic to naming one a role holds.
PUSH_PERMISSIONS: Mapping[str, str] = {
    topic: model.push_permission
    for topic, model in CATALOG.items()
    if model.audience in (Audience.TEAM, Audience.PUBLIC) and model.push_permission
}


def _holds(principal: Principal, teams: Mapping[str, str], team_id: Any, permission: str) -> bool:
    role = teams.get(team_id) if isinstance(team_id, str) else None
    if role is None:
        return False
    granted = principal.granted if principal.granted is not None else ROLE_PERMISSIONS.get(role)
    return granted is not None and permission in granted


def may_see(principal: Principal, teams: Mapping[str, str], event: Event) -> bool:
    """Whether `principal`, a member of `teams` (team id -> role) now, may be pushed `event`."""
    audience = type(event).audience
    if audience is Audience.USER:
        # An API key acts for a team, never as a user: no user's events reach it.
        return principal.api_key_id is None and principal.user_id == getattr(event, "user_id", None)
    permission = PUSH_PERMISSIONS.get(event.topic)
    if permission is None:
        return False
    if audience is Audience.TEAM:
        return _holds(principal, teams, getattr(event, "team_id", None), permission)
    if audience is Audience.PUBLIC:
        return principal.api_key_id is None or any(
            _holds(principal, teams, team_id, permission) for team_id in teams
        )
    return False


def _rfc3339(value: Any) -> str | None:
    if value is None:
        return None
    return str(value.isoformat().replace("+00:00", "Z"))


def notification_payload(item: NotificationCreated | NotificationView) -> dict[str, Any]:
    """A notification in the Notification shape of schema.graphql."""
    if isinstance(item, NotificationCreated):
        identifier, created_at, read_at = item.notification_id, item.created_at, None
    else:
        identifier, created_at, read_at = item.id, item.created_at, item.read_at
    return {
        "id": identifier,
        "type": item.type,
        "title": item.title,
        "body": item.body,
        "data": item.data,
        "createdAt": _rfc3339(created_at),
        "readAt": _rfc3339(read_at),
    }


def socket_messages(envelope: Envelope, event: Event) -> list[tuple[str, dict[str, Any]]]:
    """What Socket.IO clients receive for one event: its type name, and for a new
    notification also `notification` (runtime.md)."""
    messages = [(envelope.type, envelope.to_push())]
    if isinstance(event, NotificationCreated):
        messages.append(("notification", notification_payload(event)))
    return messages


@dataclass(frozen=True, slots=True)
class RealtimeLimits:
    max_connections: int = 10_000
    max_queued_packets: int = 1000
    subscription_queue: int = 1000
    presence_heartbeat_s: float = 10.0
    # How long a catch-up page may wait for the client to read the previous one.
    catch_up_drain_timeout_s: float = 20.0
    # An event older than this on arrival means the fan-out lags: the hub's view of
    # sessions and roles is not trusted until events arrive on time again for as long.
    trusted_lag_s: float = 2.0
    # While not trusted (or the broker does not answer), every connection is re-resolved
    # from the session store this often; the broker is probed this often too.
    recheck_interval_s: float = 5.0


PresenceChange = tuple[bool, str, str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class OnlineMember:
    user_id: str
    connections: int


class Presence:
    """Who is connected, per team, in Redis.

    One sorted set per team; each member is "<user id> <connection id>" scored
    by when it expires. The process holding the connection renews it every
    heartbeat and removes it on disconnect; a process that dies stops renewing,
    so its entries are gone from answers after the TTL (and the keys expire).
    """

    def __init__(self, redis: Redis, ttl_s: float, prefix: str = "haunted:presence:team:") -> None:
        self._redis = redis
        self.ttl_s = ttl_s
        self._prefix = prefix

    def _key(self, team_id: str) -> str:
        return self._prefix + team_id

    async def apply(self, changes: Iterable[PresenceChange]) -> None:
        """Applies (present, connection id, user id, teams) changes in order, in one
        round trip: present ones are added or renewed for one more TTL, others removed."""
        expires = time.time() + self.ttl_s
        renewed: set[str] = set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for present, connection_id, user_id, teams in changes:
                member = f"{user_id} {connection_id}"
                for team_id in teams:
                    key = self._key(team_id)
                    if present:
                        pipe.zadd(key, {member: expires})
                        renewed.add(key)
                    else:
                        pipe.zrem(key, member)
            for key in renewed:
                pipe.expire(key, math.ceil(self.ttl_s) + 1)
            if len(pipe):
                await pipe.execute()

    async def add(self, entries: Iterable[tuple[str, str, Iterable[str]]]) -> None:
        """Adds or renews (connection id, user id, teams) entries."""
        await self.apply((True, c, u, tuple(t)) for c, u, t in entries)

    async def remove(self, connection_id: str, user_id: str, teams: Iterable[str]) -> None:
        await self.apply([(False, connection_id, user_id, tuple(teams))])

    async def online(self, team_id: str) -> list[OnlineMember]:
        """The team's members with a live connection on any gateway, by user id."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self._key(team_id), "-inf", time.time())
            pipe.zrange(self._key(team_id), 0, -1)
            _, members = await pipe.execute()
        counts: dict[str, int] = {}
        for member in members:
            user_id = (member.decode() if isinstance(member, bytes) else member).split(" ")[0]
            counts[user_id] = counts.get(user_id, 0) + 1
        return [OnlineMember(user_id, counts[user_id]) for user_id in sorted(counts)]


class _PresenceWriter:
    """Coalesces the presence changes of one moment into one Redis round trip: a burst
    of connections (a gateway restart, a deploy) would otherwise cost one each."""

    def __init__(self, presence: Presence) -> None:
        self._presence = presence
        self._changes: list[PresenceChange] = []
        self._batch: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def change(self, present: bool, sid: str, user_id: str, teams: Iterable[str]) -> None:
        """Returns once the change is in Redis (or failed: presence is best effort)."""
        self._changes.append((present, sid, user_id, tuple(teams)))
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._write(self._batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.shield(self._batch)

    async def _write(self, batch: asyncio.Future[None]) -> None:
        await asyncio.sleep(0.002)  # what else arrives meanwhile goes along
        self._batch = None
        changes, self._changes = self._changes, []
        try:
            await self._presence.apply(changes)
        except Exception as error:  # Redis away: entries lapse, heartbeats restore them
            log.warning("presence update failed", error=repr(error), changes=len(changes))
        finally:
            batch.set_result(None)


@dataclass(eq=False)
class SocketConnection:
    sid: str
    principal: Principal
    teams: dict[str, str]  # team id -> role, as they stand now
    # Live events held back while the connection catches up; None once it is live.
    buffer: list[Envelope] | None = field(default_factory=list)
    # The highest notification id this connection was sent (or had, with `since`).
    last_notification_id: str | None = None

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    def rooms(self) -> list[str]:
        return [
            user_room(self.user_id),
            *(team_room(t) for t in self.teams),
            session_room(self.principal.session_id),
            AUTHENTICATED_ROOM,
        ]

    def in_any(self, rooms: Iterable[str]) -> bool:
        for room in rooms:
            kind, _, name = room.partition(":")
            if (
                room == AUTHENTICATED_ROOM
                or (kind == "user" and name == self.user_id)
                or (kind == "team" and name in self.teams)
                or (kind == "session" and name == self.principal.session_id)
            ):
                return True
        return False


@dataclass(eq=False)
class _Listener:
    principal: Principal
    types: frozenset[str] | None
    teams: dict[str, str]
    queue: asyncio.Queue[Envelope | None]


@dataclass(eq=False)
class _WebSocket:
    """A GraphQL WebSocket: its operations re-resolve their caller each time (gateway.app);
    the hub only closes it when its session or key ends."""

    principal: Principal
    close: Callable[[], Awaitable[None]]


Reauthorize = Callable[[Principal], Awaitable[Principal]]
BrokerProbe = Callable[[], Awaitable[bool]]


class _RecentIds:
    """The last N ids seen (bounded memory): the broker delivers at least once, and
    clients should get each event once."""

    def __init__(self, size: int = 10_000) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._size = size

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> bool:
        """Remembers `event_id`; False when it was already there."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True

    def forget(self, event_id: str) -> None:
        """Its delivery failed: a retry of the same event must not be taken for a duplicate."""
        self._ids.discard(event_id)


def check_pushable(types: Collection[str]) -> None:
    """Refuses event types a subscriber can never receive: ones not in the catalog
    (a typo would otherwise wait forever) and internal ones (never pushed)."""
    unknown = sorted(t for t in set(types) if t not in CATALOG)
    internal = sorted(
        t for t in set(types) if t in CATALOG and CATALOG[t].audience is Audience.INTERNAL
    )
    if not unknown and not internal:
        return
    parts = [f"unknown: {', '.join(unknown)}"] if unknown else []
    if internal:
        parts.append(f"internal, never pushed: {', '.join(internal)}")
    pushable = sorted(t for t, model in CATALOG.items() if model.audience is not Audience.INTERNAL)
    raise BadUserInput(
        f"types names events that are never pushed ({'; '.join(parts)}); "
        f"pushable types: {', '.join(pushable)}",
        types=unknown + internal,
    )


class PushHub:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        notifications: NotificationsService,
        presence: Presence,
        limits: RealtimeLimits | None = None,
        *,
        reauthorize: Reauthorize | None = None,
        broker_alive: BrokerProbe | None = None,
    ) -> None:
        self.sio = sio
        self.presence = presence
        self._presence_writer = _PresenceWriter(presence)
        self.limits = limits or RealtimeLimits()
        self._notifications = notifications
        self._connections: dict[str, SocketConnection] = {}
        self._catching_up: dict[str, SocketConnection] = {}
        self._by_user: dict[str, set[str]] = {}
        self._listeners: set[_Listener] = set()
        self._recent = _RecentIds()
        self._ended_sessions = _RecentIds()
        self._websockets: set[_WebSocket] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._reauthorize = reauthorize
        self._broker_alive = broker_alive
        # Until this moment (monotonic) the hub's view is not trusted; see the top.
        self._distrust_until = 0.0

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._heartbeat = asyncio.create_task(self._renew_presence(), name="presence-heartbeat")
        if self._reauthorize is not None:
            self._watch = asyncio.create_task(self._watch_trust(), name="push-trust-watch")

    async def stop(self) -> None:
        for task in (self._heartbeat, self._watch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._heartbeat = self._watch = None
        # A clean stop leaves no presence behind; a crash leaves it for one TTL.
        with contextlib.suppress(Exception):
            await self.presence.apply(
                (False, c.sid, c.user_id, tuple(c.teams)) for c in self._connections.values()
            )

    async def _renew_presence(self) -> None:
        interval = min(self.limits.presence_heartbeat_s, self.presence.ttl_s / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.presence.add(
                    (c.sid, c.user_id, c.teams) for c in list(self._connections.values())
                )
            except Exception as error:  # Redis away: entries lapse, then come back
                log.warning("presence heartbeat failed", error=repr(error))

    # -- Socket.IO connections -------------------------------------------------

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def full(self) -> bool:
        return len(self._connections) >= self.limits.max_connections

    async def open(self, sid: str, principal: Principal, since: str | None = None) -> None:
        """Registers an authenticated connection; catch-up and `connection_ready`
        follow once the client has its CONNECT packet."""
        connection = SocketConnection(sid, principal, dict(principal.teams))
        connection.last_notification_id = since
        self._connections[sid] = connection
        self._catching_up[sid] = connection
        self._by_user.setdefault(principal.user_id, set()).add(sid)
        CONNECTIONS.set(len(self._connections))
        for room in connection.rooms():
            await self.sio.enter_room(sid, room)
        self.sio.start_background_task(self._start, connection, since)

    async def close(self, sid: str) -> None:
        connection = self._connections.pop(sid, None)
        self._catching_up.pop(sid, None)
        if connection is None:
            return
        CONNECTIONS.set(len(self._connections))
        sids = self._by_user.get(connection.user_id)
        if sids is not None:
            sids.discard(sid)
            if not sids:
                del self._by_user[connection.user_id]
        await self._presence_writer.change(False, sid, connection.user_id, connection.teams)

    async def _start(self, connection: SocketConnection, since: str | None) -> None:
        sid = connection.sid
        # The server sends its CONNECT packet after the connect handler returns; an
        # event emitted before it would reach the client before the connection does.
        for _ in range(400):
            if self.sio.manager.is_connected(sid, NAMESPACE):
                break
            await asyncio.sleep(0.005)
        else:  # gone while it authenticated: no disconnect event will come for it
            await self.close(sid)
            return
        if sid not in self._connections:
            return
        # Online before it is told it is ready: onlineMembers right after includes it.
        await self._presence_writer.change(True, sid, connection.user_id, connection.teams)
        rooms = [user_room(connection.user_id), *(team_room(t) for t in connection.teams)]
        await self.sio.emit(
            "connection_ready", {"userId": connection.user_id, "rooms": rooms}, to=sid
        )
        if since is not None and not await self._catch_up(connection, since):
            return  # dropped while catching up
        await self._go_live(connection)

    async def _catch_up(self, connection: SocketConnection, since: str) -> bool:
        """Sends the notifications after `since`, oldest first, a page at a time, each
        page once the client has read the one before. False if the client went away."""
        with TRACER.start_as_current_span("socketio replay notifications"):
            return await self._replay(connection, since)

    async def _replay(self, connection: SocketConnection, since: str) -> bool:
        page = max(1, min(500, self.limits.max_queued_packets // 2))
        last = since
        while connection.sid in self._connections:
            missed = await self._notifications.missed(connection.principal, last, page)
            for item in missed:
                await self.sio.emit("notification", notification_payload(item), to=connection.sid)
            RECOVERED.inc(len(missed))
            if missed:
                last = connection.last_notification_id = missed[-1].id
            if len(missed) < page:
                return True
            if not await self._drained(connection.sid):
                await self._drop_slow(connection.sid)
                return False
        return False

    async def _drained(self, sid: str) -> bool:
        socket = self._engineio_socket(sid)
        if socket is None:
            return False
        try:
            await asyncio.wait_for(socket.queue.join(), self.limits.catch_up_drain_timeout_s)
        except TimeoutError:
            return False
        return True

    def _is_new_to(self, connection: SocketConnection, event: NotificationCreated) -> bool:
        """Whether `connection` still lacks this notification; if so it has it from now on."""
        last = connection.last_notification_id
        if last is not None and event.notification_id <= last:
            return False
        connection.last_notification_id = event.notification_id
        return True

    async def _go_live(self, connection: SocketConnection) -> None:
        """Flushes what arrived during catch-up, then lets events through as they come."""
        while connection.buffer:
            envelope = connection.buffer.pop(0)
            event = envelope.decode()
            if isinstance(event, NotificationCreated) and not self._is_new_to(connection, event):
                continue  # sent by the catch-up already
            if not may_see(connection.principal, connection.teams, event):
                continue  # its role changed since the event was held
            for name, payload in socket_messages(envelope, event):
                await self.sio.emit(name, payload, to=connection.sid)
        # No await between the empty check above and this: nothing can slip in between.
        connection.buffer = None
        self._catching_up.pop(connection.sid, None)
        await self._drop_slow_among([connection.sid])

    # -- delivery ----------------------------------------------------------------

    async def deliver(self, envelope: Envelope) -> None:
        """Pushes `envelope` to the connections and subscriptions that may see it."""
        if not self._recent.add(envelope.id):
            return
        try:
            await self._deliver(envelope)
        except BaseException:
            # Failed (e.g. Redis away while rechecking): the fan-out tries it again.
            self._recent.forget(envelope.id)
            raise

    async def _deliver(self, envelope: Envelope) -> None:
        event = envelope.decode()
        lag = (datetime.now(UTC) - envelope.time).total_seconds()
        if lag > self.limits.trusted_lag_s:
            self._distrust(f"an event arrived {lag:.1f} s late")
        if isinstance(event, TeamMemberAdded):
            # A new member hears of their own arrival: join before the emit.
            await self._set_role(event.user_id, event.team_id, event.role)
        elif isinstance(event, TeamRoleChanged):
            await self._set_role(event.user_id, event.team_id, event.role)
        rooms = rooms_for(event)
        if rooms and not self.trusted:
            await self._recheck(self._recipients(rooms))
        if isinstance(event, NotificationCreated):
            await self._deliver_notification(envelope, event)
        elif rooms:
            participants = [sid for sid, _ in self.sio.manager.get_participants(NAMESPACE, rooms)]
            skip = self._hold_for_catch_up(rooms, envelope, event)
            if type(event).audience is not Audience.USER:
                skip.extend(self._not_permitted(participants, event))
            with _emit_span(envelope, len(rooms)):
                for name, payload in socket_messages(envelope, event):
                    await self.sio.emit(name, payload, room=rooms, skip_sid=skip)
            await self._drop_slow_among(participants)
        for listener in list(self._listeners):
            if (listener.types is None or envelope.type in listener.types) and may_see(
                listener.principal, listener.teams, event
            ):
                self._offer(listener, envelope)
        if isinstance(event, TeamMemberRemoved):
            # ...and a removed one of their removal: leave after the emit.
            await self._set_role(event.user_id, event.team_id, None)
        if isinstance(event, UserLoggedOut | SessionRevoked):
            await self._end_sessions(event)
        if isinstance(event, ApiKeyRevoked):
            await self._end_principals(lambda p: p.api_key_id == event.api_key_id)

    def _not_permitted(self, sids: Iterable[str], event: Event) -> list[str]:
        refused = []
        for sid in sids:
            connection = self._connections.get(sid)
            if connection is None or not may_see(connection.principal, connection.teams, event):
                refused.append(sid)
        return refused

    async def _deliver_notification(self, envelope: Envelope, event: NotificationCreated) -> None:
        """To each of the user's connections that does not have it yet (see the top)."""
        targets = []
        for sid in list(self._by_user.get(event.user_id, ())):
            connection = self._connections.get(sid)
            if connection is None:
                continue
            if connection.buffer is not None:
                self._hold(connection, envelope)
            elif self._is_new_to(connection, event):
                targets.append(sid)
        if targets:
            with _emit_span(envelope, len(targets)):
                for name, payload in socket_messages(envelope, event):
                    await self.sio.emit(name, payload, to=targets)
            await self._drop_slow_among(targets)

    def _hold_for_catch_up(self, rooms: list[str], envelope: Envelope, event: Event) -> list[str]:
        held = []
        for connection in list(self._catching_up.values()):
            if connection.buffer is not None and connection.in_any(rooms):
                if may_see(connection.principal, connection.teams, event):
                    self._hold(connection, envelope)
                held.append(connection.sid)
        return held

    def _hold(self, connection: SocketConnection, envelope: Envelope) -> None:
        assert connection.buffer is not None
        connection.buffer.append(envelope)
        if len(connection.buffer) > self.limits.max_queued_packets:
            self.sio.start_background_task(self._drop_slow, connection.sid)

    def _engineio_socket(self, sid: str) -> Any:
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        return self.sio.eio.sockets.get(eio_sid) if eio_sid is not None else None

    async def _drop_slow_among(self, sids: Iterable[str]) -> None:
        limit = self.limits.max_queued_packets
        for sid in list(sids):
            socket = self._engineio_socket(sid)
            if socket is not None and socket.queue.qsize() > limit:
                await self._drop_slow(sid)

    async def _drop_slow(self, sid: str) -> None:
        """Drops a connection whose client stopped reading, and the packets queued for it.

        The Engine.IO transport closes (not a Socket.IO disconnect), so clients
        reconnect by themselves and recover with `since`.
        """
        socket = self._engineio_socket(sid)
        if socket is None or socket.closed or socket.closing:
            return
        connection = self._connections.get(sid)
        SLOW_DISCONNECTS.inc()
        log.warning(
            "slow client disconnected",
            sid=sid,
            user_id=connection.user_id if connection else None,
            queued=socket.queue.qsize(),
        )
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                socket.queue.get_nowait()
                socket.queue.task_done()
        await socket.close(wait=False, abort=False)

    async def _set_role(self, user_id: str, team_id: str, role: str | None) -> None:
        """The user's role in the team from now on (None: no longer a member)."""
        for sid in list(self._by_user.get(user_id, ())):
            connection = self._connections.get(sid)
            if connection is not None:
                await self._set_teams(connection, {**connection.teams, team_id: role})
        for listener in self._listeners:
            if listener.principal.user_id == user_id and listener.principal.api_key_id is None:
                _put_role(listener.teams, team_id, role)

    async def _set_teams(
        self, connection: SocketConnection, teams: Mapping[str, str | None]
    ) -> None:
        """Moves a connection to `teams` (None roles dropped): rooms and presence follow."""
        sid, user_id = connection.sid, connection.user_id
        current = {team: role for team, role in teams.items() if role is not None}
        joined = [team for team in current if team not in connection.teams]
        left = [team for team in connection.teams if team not in current]
        connection.teams = current
        for team_id in joined:
            await self.sio.enter_room(sid, team_room(team_id))
        for team_id in left:
            await self.sio.leave_room(sid, team_room(team_id))
        if joined:
            await self._presence_writer.change(True, sid, user_id, joined)
        if left:
            await self._presence_writer.change(False, sid, user_id, left)

    async def _end_sessions(self, event: UserLoggedOut | SessionRevoked) -> None:
        """A logged-out or revoked session loses its sockets and its subscriptions."""
        ended_session = event.session_id
        if ended_session:
            self._ended_sessions.add(ended_session)
        await self._end_principals(
            lambda p: (
                p.api_key_id is None
                and p.user_id == event.user_id
                and ended_session in (None, p.session_id)
            )
        )

    async def _end_principals(self, ended: Callable[[Principal], bool]) -> None:
        """Ends every Socket.IO connection, subscription and GraphQL WebSocket whose
        principal `ended` says is no longer valid (logged out, revoked, key revoked)."""
        for sid, connection in list(self._connections.items()):
            if ended(connection.principal):
                self._ended_sessions.add(connection.principal.session_id)
                await self.sio.disconnect(sid)
        for listener in list(self._listeners):
            if ended(listener.principal):
                self._ended_sessions.add(listener.principal.session_id)
                self._end_listener(listener)
        for websocket in list(self._websockets):
            if ended(websocket.principal):
                self._ended_sessions.add(websocket.principal.session_id)
                self._websockets.discard(websocket)
                with contextlib.suppress(Exception):
                    await websocket.close()

    # -- trust -------------------------------------------------------------------

    @property
    def trusted(self) -> bool:
        """Whether the view built from events may be served from (see the top)."""
        return time.monotonic() >= self._distrust_until

    def _distrust(self, why: str) -> None:
        if self._reauthorize is None:
            return
        if self.trusted:
            log.warning("push view not trusted: re-resolving recipients", why=why)
        self._distrust_until = time.monotonic() + max(
            self.limits.trusted_lag_s, self.limits.recheck_interval_s
        )

    def _recipients(self, rooms: list[str]) -> list[Principal]:
        sids = [sid for sid, _ in self.sio.manager.get_participants(NAMESPACE, rooms)]
        found = [c.principal for sid in sids if (c := self._connections.get(sid)) is not None]
        return found + [listener.principal for listener in self._listeners]

    def _everyone(self) -> list[Principal]:
        return [
            *(c.principal for c in self._connections.values()),
            *(listener.principal for listener in self._listeners),
            *(websocket.principal for websocket in self._websockets),
        ]

    async def _recheck(self, principals: Iterable[Principal]) -> None:
        """Re-resolves principals from the session store: ended ones are ended, the others'
        roles replaced by the current ones. Costs one round trip per session or key."""
        if self._reauthorize is None:
            return
        reauthorize = self._reauthorize
        unique = {p.session_id: p for p in principals}
        if not unique:
            return
        UNTRUSTED_PUSHES.inc()

        async def resolve(principal: Principal) -> Principal | None:
            try:
                return await reauthorize(principal)
            except Unauthenticated:
                return None

        resolved = await asyncio.gather(*(resolve(p) for p in unique.values()))
        now = dict(zip(unique, resolved, strict=True))
        ended = {sid for sid, current in now.items() if current is None}
        if ended:
            await self._end_principals(lambda p: p.session_id in ended)
        for connection in list(self._connections.values()):
            current = now.get(connection.principal.session_id)
            if current is not None:
                await self._set_teams(connection, dict(current.teams))
        for listener in self._listeners:
            current = now.get(listener.principal.session_id)
            if current is not None:
                listener.teams = dict(current.teams)

    async def _watch_trust(self) -> None:
        """Probes the broker; while it does not answer (or the view is not trusted for
        another reason), re-resolves every connection each interval."""
        while True:
            await asyncio.sleep(self.limits.recheck_interval_s)
            try:
                if self._broker_alive is not None and not await self._broker_alive():
                    self._distrust("the broker does not answer")
                if not self.trusted:
                    await self._recheck(self._everyone())
            except Exception as error:  # the store away too: try again next interval
                log.warning("push trust check failed", error=repr(error))

    # -- GraphQL WebSockets ----------------------------------------------------------

    def track_websocket(
        self, principal: Principal, close: Callable[[], Awaitable[None]]
    ) -> Callable[[], None]:
        """Registers an open GraphQL WebSocket, to be closed when its session or key ends;
        returns what unregisters it."""
        websocket = _WebSocket(principal, close)
        self._websockets.add(websocket)
        return lambda: self._websockets.discard(websocket)

    # -- GraphQL subscriptions ---------------------------------------------------

    def session_ended(self, session_id: str) -> bool:
        """Whether this process saw `session_id` end (logout or revocation)."""
        return session_id in self._ended_sessions

    def _offer(self, listener: _Listener, envelope: Envelope) -> None:
        try:
            with TRACER.start_as_current_span(
                "subscription push", attributes={"cloudevents.event_type": envelope.type}
            ):
                listener.queue.put_nowait(envelope)
        except asyncio.QueueFull:
            # A subscriber this far behind is gone or stuck: end it rather than grow.
            log.warning("subscription dropped: too far behind", user_id=listener.principal.user_id)
            self._end_listener(listener)

    def _end_listener(self, listener: _Listener) -> None:
        self._listeners.discard(listener)
        with contextlib.suppress(asyncio.QueueEmpty):
            listener.queue.get_nowait()
        listener.queue.put_nowait(None)

    async def listen(
        self, principal: Principal, types: Collection[str] | None = None
    ) -> AsyncIterator[Envelope]:
        """The events `principal` may see, as they arrive, until the session ends."""
        if self.session_ended(principal.session_id):
            return
        listener = _Listener(
            principal,
            frozenset(types) if types is not None else None,
            dict(principal.teams),
            asyncio.Queue(maxsize=self.limits.subscription_queue),
        )
        self._listeners.add(listener)
        try:
            while (envelope := await listener.queue.get()) is not None:
                yield envelope
        finally:
            self._listeners.discard(listener)

    @property
    def listener_count(self) -> int:
        return len(self._listeners)


def _put_role(teams: dict[str, str], team_id: str, role: str | None) -> None:
    if role is None:
        teams.pop(team_id, None)
    else:
        teams[team_id] = role


def _emit_span(envelope: Envelope, targets: int) -> Any:
    """The span of one Socket.IO emit of an event, in the event's trace."""
    return TRACER.start_as_current_span(
        f"socketio emit {envelope.type}",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "cloudevents.event_type": envelope.type,
            "messaging.message.id": envelope.id,
            "socketio.targets": targets,
        },
    )
