"""Token budgets and per-minute rate limits per team, shared by every gateway through Redis.

Counters are plain Redis integers changed in MULTI/EXEC blocks, so every
gateway process sees and moves the same numbers. A request slot is taken with
INCR and given back with DECR when over the limit; tokens are added once the
provider reports them (a call admitted under budget may end a little over it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from services.errors import QuotaExceeded, RateLimited

_PREFIX = "haunted:llm:"
MINUTE = 60


@dataclass(frozen=True, slots=True)
class PlanLimits:
    plan_id: str
    tokens_per_period: int
    requests_per_minute: int
    tokens_per_minute: int
    period_end: datetime  # the budget resets then


def month_end(now: datetime) -> datetime:
    """The start of the next calendar month (UTC): the default plan's period end."""
    if now.month == 12:
        return datetime(now.year + 1, 1, 1, tzinfo=UTC)
    return datetime(now.year, now.month + 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Usage:
    tokens_used: int
    requests_this_minute: int
    tokens_this_minute: int


class Quotas:
    def __init__(self, redis: Redis, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self._clock = clock

    def _keys(self, team_id: str, limits: PlanLimits) -> tuple[str, str, str, int]:
        now = self._clock()
        minute = int(now // MINUTE)
        period = int(limits.period_end.timestamp())
        return (
            f"{_PREFIX}tokens:{team_id}:{period}",
            f"{_PREFIX}rpm:{team_id}:{minute}",
            f"{_PREFIX}tpm:{team_id}:{minute}",
            math.ceil((minute + 1) * MINUTE - now),
        )

    async def admit(
        self, team_id: str, limits: PlanLimits, *, also_get: str | None = None
    ) -> bytes | None:
        """Takes one request slot, or raises QUOTA_EXCEEDED / RATE_LIMITED.

        `also_get`: a key read in the same round trip (the answer cache); its value
        is returned. The slot is taken by INCR, so concurrent calls never get more
        slots than the limit (one over it gives its slot back)."""
        budget_key, rpm_key, tpm_key, retry_after = self._keys(team_id, limits)
        retry_after = max(1, retry_after)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(budget_key)
            pipe.get(tpm_key)
            pipe.incr(rpm_key)
            pipe.expire(rpm_key, 2 * MINUTE)
            if also_get is not None:
                pipe.get(also_get)
            used, tokens_this_minute, requests, _, *extra = await pipe.execute()
        over_budget = int(used or 0) >= limits.tokens_per_period
        over_tpm = int(tokens_this_minute or 0) >= limits.tokens_per_minute
        if over_budget or over_tpm or int(requests) > limits.requests_per_minute:
            await self.redis.decr(rpm_key)
        if over_budget:
            raise QuotaExceeded(
                f"the team's token budget of {limits.tokens_per_period} is used up"
                f" until {limits.period_end.isoformat()}",
                resetsAt=limits.period_end.isoformat().replace("+00:00", "Z"),
                planId=limits.plan_id,
                limit=limits.tokens_per_period,
            )
        if over_tpm or int(requests) > limits.requests_per_minute:
            what = "tokens" if over_tpm else "requests"
            raise RateLimited(
                f"too many LLM {what} per minute for the team; retry in {retry_after} s",
                retryAfter=retry_after,
            )
        return extra[0] if extra else None

    async def record(
        self,
        team_id: str,
        limits: PlanLimits,
        tokens: int,
        *,
        also_set: tuple[str, str, int] | None = None,
    ) -> None:
        """Counts tokens the provider billed against the period budget and the minute.

        `also_set`: (key, value, ttl seconds) written in the same round trip (the
        answer cache)."""
        await self.record_many([(team_id, limits, tokens, also_set)])

    async def record_many(
        self, usages: Sequence[tuple[str, PlanLimits, int, tuple[str, str, int] | None]]
    ) -> None:
        """`record` for several calls in one MULTI/EXEC: (team, limits, tokens, also_set)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for team_id, limits, tokens, also_set in usages:
                if tokens > 0:
                    budget_key, _, tpm_key, _ = self._keys(team_id, limits)
                    # Kept a day past the period end: late readers still see the final count.
                    expire_at = int(limits.period_end.timestamp()) + 24 * 3600
                    pipe.incrby(budget_key, tokens)
                    pipe.expireat(budget_key, expire_at)
                    pipe.incrby(tpm_key, tokens)
                    pipe.expire(tpm_key, 2 * MINUTE)
                if also_set is not None:
                    key, value, ttl = also_set
                    pipe.set(key, value, ex=ttl)
            if len(pipe):
                await pipe.execute()

    async def usage(self, team_id: str, limits: PlanLimits) -> Usage:
        budget_key, rpm_key, tpm_key, _ = self._keys(team_id, limits)
        used, requests, tokens = await self.redis.mget([budget_key, rpm_key, tpm_key])
        return Usage(int(used or 0), int(requests or 0), int(tokens or 0))
