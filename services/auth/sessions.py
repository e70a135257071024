"""The hot copy of sessions and roles in Redis: one round trip per authenticated request,
or none while the process's local copy may be trusted (`LocalSessions`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import ResponseError

from events.metrics import CACHE_REQUESTS

log = structlog.get_logger(__name__)
# Bound once: a labels() lookup per request was half of `authenticate`'s own time.
_SESSIONS_HIT = CACHE_REQUESTS.labels("sessions", "hit")
_SESSIONS_MISS = CACHE_REQUESTS.labels("sessions", "miss")
_ROLES_HIT = CACHE_REQUESTS.labels("roles", "hit")
_ROLES_MISS = CACHE_REQUESTS.labels("roles", "miss")

_SESSION = "haunted:session:"
_ROLES = "haunted:roles:"
# Left in place of dropped roles for a moment: a request that read the old
# memberships just before the change cannot cache them back (fills are NX).
TOMBSTONE = b"-"
TOMBSTONE_TTL_S = 10


class SessionStore:
    def __init__(self, redis: Redis, ttl_s: int, roles_ttl_s: int = 300) -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._roles_ttl_s = roles_ttl_s
        self._local: LocalSessions | None = None

    async def start_local_copy(self, local: LocalSessions | None = None) -> None:
        """Serves sessions from a copy in this process while Redis keeps it right (see
        `LocalSessions`); a gateway does, a worker has no use for it."""
        self._local = local or LocalSessions(self._redis, slide_every_s=min(60.0, self._ttl_s / 4))
        await self._local.start()

    async def stop_local_copy(self) -> None:
        if self._local is not None:
            local, self._local = self._local, None
            await local.stop()

    @property
    def local(self) -> LocalSessions | None:
        return self._local

    @property
    def redis(self) -> Redis:
        """The same client, for auth's other short-lived state (login lockouts)."""
        return self._redis

    async def create(self, session_id: str, user_id: str) -> None:
        await self._redis.set(_SESSION + session_id, user_id, ex=self._ttl_s)

    async def touch(
        self, session_id: str, user_id: str, *, from_store: bool = False
    ) -> tuple[bool, dict[str, str] | None]:
        """Slides the session's expiry and reads the user's cached roles, in one round trip.

        Returns (session alive for this user, roles or None when not cached).
        With the local copy on: answered from it when it holds both and is trusted;
        else read from Redis, and kept (`LocalSessions.read`). `from_store`: from Redis
        whatever the copy holds (re-authorising a long-lived connection).
        """
        local = self._local
        if local is not None and local.trusted and not from_store:
            roles_copy = local.lookup(session_id, user_id)
            if roles_copy is not None:
                _SESSIONS_HIT.inc()
                _ROLES_HIT.inc()
                return True, roles_copy
            owner, roles = await local.read(session_id, user_id, self._ttl_s)
        else:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.getex(_SESSION + session_id, ex=self._ttl_s)
                pipe.get(_ROLES + user_id)
                owner, roles = await pipe.execute()
        alive = owner is not None and owner.decode() == user_id
        (_SESSIONS_HIT if alive else _SESSIONS_MISS).inc()
        if roles is None or roles == TOMBSTONE:
            _ROLES_MISS.inc()
            return alive, None
        _ROLES_HIT.inc()
        return alive, json.loads(roles)

    async def cache_roles(self, user_id: str, roles: dict[str, str]) -> None:
        await self._redis.set(_ROLES + user_id, json.dumps(roles), ex=self._roles_ttl_s, nx=True)

    async def forget_roles(self, *user_ids: str) -> None:
        """Called right after a membership change commits: the next request reloads."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.set(_ROLES + user_id, TOMBSTONE, ex=TOMBSTONE_TTL_S)
            await pipe.execute()
        if self._local is not None:
            self._local.forget(users=user_ids)

    async def delete(self, *session_ids: str) -> int:
        if not session_ids:
            return 0
        deleted = int(await self._redis.delete(*(_SESSION + sid for sid in session_ids)))
        if self._local is not None:
            # This process's copy at once (reads still in flight are not kept); the
            # other processes' copies when Redis tells them.
            self._local.forget(sessions=session_ids)
        return deleted

    async def exists(self, session_id: str) -> bool:
        return bool(await self._redis.exists(_SESSION + session_id))


INVALIDATIONS = "__redis__:invalidate"
_CANARY = _SESSION + "~canary:"


class LocalSessions:
    """This process's copy of sessions and roles, kept right by Redis itself.

    Redis's client-side caching (CLIENT TRACKING, broadcast mode, on the session
    and roles prefixes) tells this process of every write to those keys, on a
    connection of its own: a logout, a revocation, an expiry, a role change on any
    process. The copy drops the key when told. So a revocation reaches it from
    the store that holds it, not through the broker: a frozen or lagging broker
    delays nothing.

    The copy is trusted only while it hears of its own canary: every
    `heartbeat_s` this process writes a key under the tracked prefix and must
    hear of it within `deadline_s`. When it does not (Redis away, the connection
    broken or reconnected without tracking, this loop stalled), every request
    reads Redis again, the copy is emptied, and the connection is built afresh.
    What a revocation may still wait for: the invalidation's way from Redis to
    this loop (loopback: well under a millisecond), or at most `deadline_s` when
    that way breaks silently. docs/security.md says what holds.

    A session read from Redis is kept only if no invalidation of its keys arrived
    while the read was in flight (a revocation racing the read wins). Sliding
    the session's expiry writes the key, which invalidates every copy of it:
    so a copy slides a session at most once per `slide_every_s` (a GETEX, not
    kept), and otherwise reads it with a plain GET (kept).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        slide_every_s: float = 60.0,
        max_entries: int = 100_000,
        heartbeat_s: float = 0.25,
        deadline_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._slide_every_s = slide_every_s
        self._max_entries = max_entries
        self._heartbeat_s = heartbeat_s
        self._deadline_s = deadline_s
        self._sessions: dict[str, tuple[str, float]] = {}  # session -> (user, kept at)
        self._roles: dict[str, dict[str, str]] = {}
        self._slid: dict[str, float] = {}  # session -> when this process last slid it
        self._in_flight: dict[bytes, int] = {}  # key -> reads under way
        self._changes: dict[bytes, int] = {}  # key -> invalidations during those reads
        self._generation = 0  # bumped by each emptying: reads from before are not kept
        self._canary = f"{_CANARY}{uuid.uuid4().hex}"
        self._canary_seen = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self.supported = True

    # -- requests ------------------------------------------------------------------

    @property
    def trusted(self) -> bool:
        return time.monotonic() - self._canary_seen < self._deadline_s

    def lookup(self, session_id: str, user_id: str) -> dict[str, str] | None:
        """The user's roles when this copy holds the session (alive, for this user) and
        the roles, fresh enough; else None (read Redis)."""
        kept = self._sessions.get(session_id)
        if kept is None or kept[0] != user_id:
            return None
        if time.monotonic() - kept[1] >= self._slide_every_s:
            return None  # time to slide it in Redis
        return self._roles.get(user_id)

    async def read(
        self, session_id: str, user_id: str, ttl_s: int
    ) -> tuple[bytes | None, bytes | None]:
        """The session's owner and the user's roles from Redis, as `touch` reads them;
        kept here when no invalidation of either key raced the read."""
        session_key, roles_key = (_SESSION + session_id).encode(), (_ROLES + user_id).encode()
        now = time.monotonic()
        slide = now - self._slid.get(session_id, float("-inf")) >= self._slide_every_s
        generation = self._generation
        keys = (session_key, roles_key)
        for key in keys:
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
        before = [self._changes.get(key, 0) for key in keys]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                if slide:
                    pipe.getex(_SESSION + session_id, ex=ttl_s)
                else:
                    pipe.get(_SESSION + session_id)
                pipe.get(_ROLES + user_id)
                owner, roles = await pipe.execute()
            raced = generation != self._generation or before != [
                self._changes.get(key, 0) for key in keys
            ]
        finally:
            for key in keys:
                left = self._in_flight[key] - 1
                if left:
                    self._in_flight[key] = left
                else:
                    del self._in_flight[key]
                    self._changes.pop(key, None)
        if slide:
            # The slide wrote the key: the copy is told to drop it, so keep nothing now.
            self._remember(self._slid, session_id, now)
        elif not raced and owner is not None and roles is not None and roles != TOMBSTONE:
            if owner.decode() == user_id:
                self._remember(self._sessions, session_id, (user_id, now))
                self._remember(self._roles, user_id, json.loads(roles))
        return owner, roles

    def _remember(self, entries: dict[str, Any], key: str, value: Any) -> None:
        if key not in entries and len(entries) >= self._max_entries:
            del entries[next(iter(entries))]  # the oldest kept
        entries[key] = value

    def forget(self, *, sessions: Iterable[str] = (), users: Iterable[str] = ()) -> None:
        """Drops what this process itself is about to change in Redis: its own next
        request must not be served from the copy before Redis's word comes back."""
        self._invalidated(
            [(_SESSION + s).encode() for s in sessions] + [(_ROLES + u).encode() for u in users]
        )

    # -- following Redis ---------------------------------------------------------------

    def _empty(self) -> None:
        self._generation += 1
        self._sessions.clear()
        self._roles.clear()

    def _invalidated(self, keys: list[bytes] | None) -> None:
        if keys is None:  # FLUSHDB / FLUSHALL, or Redis lost track: forget everything
            self._empty()
            return
        for key in keys:
            if key.startswith(b"haunted:session:~canary:"):
                if key.decode() == self._canary:
                    if not self.trusted:
                        self._empty()  # invalidations may have been missed meanwhile
                    self._canary_seen = time.monotonic()
                continue
            if key in self._in_flight:
                self._changes[key] = self._changes.get(key, 0) + 1
            name = key.decode()
            if name.startswith(_SESSION):
                self._sessions.pop(name[len(_SESSION) :], None)
            elif name.startswith(_ROLES):
                self._roles.pop(name[len(_ROLES) :], None)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="session-invalidations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._canary_seen = float("-inf")
        self._empty()

    async def wait_trusted(self, timeout_s: float = 10.0) -> None:
        """Until the copy is trusted (tests and benchmarks; requests never wait)."""
        async with asyncio.timeout(timeout_s):
            while not self.trusted:
                await asyncio.sleep(0.01)

    async def _run(self) -> None:
        failures = 0
        while True:
            followed = time.monotonic()
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away: read it on every request meanwhile
                if isinstance(error, ResponseError) and "unknown command" in str(error).lower():
                    # A server without client tracking (fakeredis, the embedded default):
                    # the copy stays off and every request reads the store, as before.
                    self.supported = False
                    log.info("session copy off: the store has no client tracking", error=str(error))
                    return
                # Any other refusal (a server still loading, say) is tried again.
                # One line per outage, not per attempt: a copy that followed for a
                # while starts counting again.
                failures = (
                    1 if time.monotonic() - followed > 10 * self._deadline_s else failures + 1
                )
                if failures == 1:
                    log.warning("session copy not trusted", error=repr(error))
            self._canary_seen = float("-inf")
            self._empty()
            await asyncio.sleep(min(5.0, self._heartbeat_s * 2 ** min(failures, 10)))

    async def _follow(self) -> None:
        """One tracking connection, until it fails or the canary stops coming back.
        RESP2 on purpose: invalidations then come as Pub/Sub messages (RESP3 pushes
        have no public handler in redis-py's asyncio client)."""
        pool = self._redis.connection_pool
        # The same server and credentials; RESP3's maintenance notifications left out.
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if not k.startswith("maint_")}
        tracking = Redis(
            connection_pool=ConnectionPool(
                connection_class=pool.connection_class,
                max_connections=1,
                **{**kwargs, "protocol": 2},
            )
        )
        pubsub = tracking.pubsub()
        try:
            await pubsub.connect()
            connection = pubsub.connection
            assert connection is not None
            await connection.send_command("CLIENT", "ID")
            client_id = await connection.read_response()
            await connection.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST",
                "PREFIX", _SESSION, "PREFIX", _ROLES,
            )  # fmt: skip
            answer = await connection.read_response()
            if isinstance(answer, ResponseError):
                raise answer
            await pubsub.subscribe(INVALIDATIONS)
            beat = 0
            followed_since = next_beat = time.monotonic()
            while True:
                now = time.monotonic()
                if now >= next_beat:
                    if now - max(self._canary_seen, followed_since) > 3 * self._deadline_s:
                        raise TimeoutError("the canary's invalidations stopped: tracking lost")
                    beat += 1
                    await self._redis.set(self._canary, beat, px=int(self._deadline_s * 10_000))
                    next_beat = now + self._heartbeat_s
                message = await pubsub.get_message(timeout=max(0.0, next_beat - now))
                if message is not None and message["type"] == "message":
                    self._invalidated(message["data"])
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await tracking.aclose()
