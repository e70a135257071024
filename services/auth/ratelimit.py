"""Request rate limits on auth mutations, shared by every gateway through Redis (`limits`)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from redis.asyncio import Redis

from services.errors import RateLimited


def limits_storage_uri(redis_url: str) -> tuple[str, dict[str, str]]:
    """The `limits` storage for the app's Redis URL (memory:// stays in-process)."""
    if redis_url == "memory://":
        return "async+memory://", {}
    return "async+" + redis_url, {"implementation": "redispy"}


class AuthRateLimiter:
    def __init__(self, redis_url: str, *, per_ip: str, per_account: str) -> None:
        uri, options = limits_storage_uri(redis_url)
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri, **options))
        self._per_ip: RateLimitItem = parse(per_ip)
        self._per_account: RateLimitItem = parse(per_account)

    async def hit(self, action: str, *, ip: str | None, account: str | None = None) -> None:
        """Counts one attempt; raises RATE_LIMITED, with when to retry, past a limit."""
        for item, scope in ((self._per_ip, ip), (self._per_account, account)):
            if scope is None:
                continue
            if not await self._limiter.hit(item, "auth", action, scope):
                stats = await self._limiter.get_window_stats(item, "auth", action, scope)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(
                    f"too many {action} attempts; retry in {retry_after} s",
                    retryAfter=retry_after,
                )


class LoginLockout:
    """Failed logins counted per (account, client) in Redis: `threshold` failures from one
    client lock the account for that client for `duration`; other clients are unaffected.

    One hash per account (`haunted:login:<email hash>`): a counter and a lock expiry per
    client fingerprint, the whole hash expiring `duration` after the last failure. Unknown
    emails are counted alike, so a lock says nothing about whether the account exists.
    The account-wide lock (a much higher threshold) stays with the user row.
    """

    def __init__(self, redis: Redis, *, threshold: int, duration: timedelta) -> None:
        self._redis = redis
        self._threshold = threshold
        self._duration = duration

    @staticmethod
    def _key(account: str) -> str:
        return f"haunted:login:{account}"

    async def locked(self, account: str, client: str) -> bool:
        until = await self._redis.hget(self._key(account), "lock:" + client)
        return until is not None and float(until) > time.time()

    async def failed(self, account: str, client: str) -> datetime | None:
        """Counts one failure; returns when the new lock ends if this one locked the client."""
        key, seconds = self._key(account), math.ceil(self._duration.total_seconds())
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "count:" + client, 1)
            pipe.expire(key, seconds)
            count, _ = await pipe.execute()
        if int(count) < self._threshold:
            return None
        until = datetime.now(UTC) + self._duration
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, "lock:" + client, until.timestamp())
            pipe.hdel(key, "count:" + client)
            await pipe.execute()
        return until

    async def succeeded(self, account: str, client: str) -> None:
        await self._redis.hdel(self._key(account), "count:" + client)

    async def clear(self, account: str) -> None:
        """Every client's count and lock for the account (a password reset unlocks)."""
        await self._redis.delete(self._key(account))
