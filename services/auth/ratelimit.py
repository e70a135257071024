"""Request rate limits on auth mutations, shared by every gateway through Redis (`limits`)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

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
