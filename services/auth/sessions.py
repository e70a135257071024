"""Sessions in Redis: one read per authenticated request, sliding expiry."""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    user_id: str
    teams: dict[str, str]  # team id -> role, so a request needs no database read


class SessionStore:
    def __init__(self, redis: Redis, ttl_s: int, prefix: str = "haunted:session:") -> None:
        self._redis = redis
        self._ttl_s = ttl_s
        self._prefix = prefix

    async def create(self, session: Session) -> None:
        record = json.dumps({"user_id": session.user_id, "teams": session.teams})
        await self._redis.set(self._prefix + session.session_id, record, ex=self._ttl_s)

    async def touch(self, session_id: str) -> Session | None:
        """Reads the session and slides its expiry, in one round trip."""
        raw = await self._redis.getex(self._prefix + session_id, ex=self._ttl_s)
        if raw is None:
            return None
        record = json.loads(raw)
        return Session(session_id, record["user_id"], dict(record["teams"]))

    async def delete(self, session_id: str) -> bool:
        return bool(await self._redis.delete(self._prefix + session_id))
