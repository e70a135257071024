"""The hot copy of sessions and roles in Redis: one round trip per authenticated request."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from events.metrics import CACHE_REQUESTS

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

    @property
    def redis(self) -> Redis:
        """The same client, for auth's other short-lived state (login lockouts)."""
        return self._redis

    async def create(self, session_id: str, user_id: str) -> None:
        await self._redis.set(_SESSION + session_id, user_id, ex=self._ttl_s)

    async def touch(self, session_id: str, user_id: str) -> tuple[bool, dict[str, str] | None]:
        """Slides the session's expiry and reads the user's cached roles, in one round trip.

        Returns (session alive for this user, roles or None when not cached).
        """
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.getex(_SESSION + session_id, ex=self._ttl_s)
            pipe.get(_ROLES + user_id)
            owner, roles = await pipe.execute()
        alive = owner is not None and owner.decode() == user_id
        CACHE_REQUESTS.labels("sessions", "hit" if alive else "miss").inc()
        if roles is None or roles == TOMBSTONE:
            CACHE_REQUESTS.labels("roles", "miss").inc()
            return alive, None
        CACHE_REQUESTS.labels("roles", "hit").inc()
        return alive, json.loads(roles)

    async def cache_roles(self, user_id: str, roles: dict[str, str]) -> None:
        await self._redis.set(_ROLES + user_id, json.dumps(roles), ex=self._roles_ttl_s, nx=True)

    async def forget_roles(self, *user_ids: str) -> None:
        """Called right after a membership change commits: the next request reloads."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.set(_ROLES + user_id, TOMBSTONE, ex=TOMBSTONE_TTL_S)
            await pipe.execute()

    async def delete(self, *session_ids: str) -> int:
        if not session_ids:
            return 0
        return int(await self._redis.delete(*(_SESSION + sid for sid in session_ids)))

    async def exists(self, session_id: str) -> bool:
        return bool(await self._redis.exists(_SESSION + session_id))
