"""The LLM gateway facade: runs prompt files against a provider, metered and within quota.

Every call ends in exactly one event through the outbox: `prompt.completed`
(tokens, latency, cost) or `prompt.failed` (an error code). A call answers only
after its event is committed; concurrent calls share that transaction (and the
read of their teams' plans), so the database sees one round of statements per
batch instead of one per call (events.batching). Redis is reached twice per
call: admission with the cache lookup, then the usage with the cache store
(the usage of calls ending together in one MULTI/EXEC).
Logs carry ids and counts only, never variables or text.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from redis.asyncio import Redis
from sqlalchemy import select

from events.batching import Batcher
from events.db import Database
from events.metrics import CACHE_REQUESTS, LLM_COST, LLM_TOKENS
from events.outbox import add_event
from schemas import Event, PromptCompleted, PromptFailed
from services.errors import DomainError, QuotaExceeded, RateLimited
from services.llm.models import TeamPlan
from services.llm.prompts import Prompt, PromptFileError, PromptLibrary
from services.llm.provider import (
    ChatRequest,
    Completion,
    Provider,
    ProviderError,
    StreamCut,
    estimate_tokens,
    messages_tokens,
)
from services.llm.quotas import PlanLimits, Quotas, Usage, month_end
from services.principal import Caller, ExportSubject, Principal, require_self, requires

log = structlog.get_logger(__name__)

ACTIVE_STATUSES = frozenset({"active", "trialing", "past_due"})
_CACHE = "haunted:llm:cache:"


class ProviderUnavailable(DomainError):
    """Every attempt on every model failed; the code stays the contract's INTERNAL."""

    code = "INTERNAL"


@dataclass(frozen=True, slots=True)
class LlmConfig:
    """Built by the composition root from the LLM settings and the plans file (no
    defaults here: they are written once, there)."""

    # Teams without a subscription, or on a plan id no longer in the file, get the default's.
    default_plan_id: str
    plans: Mapping[str, PlanQuota]
    # USD per million tokens: (prompt, completion).
    prices: Mapping[str, tuple[float, float]]
    max_retries: int
    retry_backoff_s: float
    retry_max_wait_s: float
    reload_prompts: bool
    force_model: str | None  # the offline model answers for every prompt


@dataclass(frozen=True, slots=True)
class PlanQuota:
    """A plan's LLM limits, from its entitlements in the plans file."""

    tokens_per_period: int
    requests_per_minute: int
    tokens_per_minute: int


@dataclass(frozen=True, slots=True)
class PromptResult:
    """What callPrompt answers (the schema's PromptResult, its names in snake_case)."""

    request_id: str
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class StreamItem:
    """A text delta, or (done) the final record with the usage."""

    request_id: str
    delta: str | None = None
    done: bool = False
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool | None = None


@dataclass(frozen=True, slots=True)
class LlmUsage:
    team_id: str
    plan_id: str
    tokens_used: int
    tokens_per_period: int
    period_end: datetime
    requests_per_minute: int
    tokens_per_minute: int
    requests_this_minute: int
    tokens_this_minute: int


@dataclass(frozen=True, slots=True)
class LlmPlanExport:
    """A team of the user's LLM plan and limits, as the gateway enforces them."""

    team_id: str
    plan_id: str
    tokens_per_period: int
    requests_per_minute: int
    tokens_per_minute: int
    period_end: datetime


@dataclass(frozen=True, slots=True)
class _Call:
    request_id: str
    user_id: str
    team_id: str
    prompt: Prompt
    messages: list[dict[str, str]]
    limits: PlanLimits
    started: float


class LlmService:
    def __init__(
        self,
        db: Database,
        redis: Redis,
        prompts: PromptLibrary,
        provider: Provider,
        config: LlmConfig,
    ) -> None:
        self._db = db
        self._redis = redis
        self._prompts = prompts
        self._provider = provider
        self._config = config
        self.quotas = Quotas(redis)
        self._plan_reads: Batcher[str, TeamPlan | None] = Batcher(self._read_plans)
        self._usage_writes: Batcher[
            tuple[str, PlanLimits, int, tuple[str, str, int] | None], None
        ] = Batcher(self._write_usage)
        self._event_writes: Batcher[tuple[Event, contextvars.Context], None] = Batcher(
            self._write_events
        )

    @property
    def provider(self) -> Provider:
        return self._provider

    async def close(self) -> None:
        await self._provider.close()

    def _library(self) -> PromptLibrary:
        if self._config.reload_prompts:
            try:
                if self._prompts.refresh():
                    log.info("prompts reloaded", count=len(self._prompts))
            except PromptFileError as error:
                log.error("prompt reload failed; serving the last good set", error=str(error))
        return self._prompts

    @requires("llm:call")
    async def prompts(self, principal: Principal, *, team_id: str | None = None) -> list[Prompt]:
        return list(self._library())

    # --- plans and quotas -------------------------------------------------------------

    async def _read_plans(self, team_ids: Sequence[str]) -> list[TeamPlan | None]:
        async with self._db.read() as session:
            query = select(TeamPlan).where(TeamPlan.team_id.in_(set(team_ids)))
            rows = {row.team_id: row for row in (await session.execute(query)).scalars()}
        return [rows.get(team_id) for team_id in team_ids]

    async def _write_events(self, items: Sequence[tuple[Event, contextvars.Context]]) -> list[None]:
        async with self._db.transaction() as session:
            for event, context in items:
                # In the caller's context: its trace goes with its event.
                context.run(add_event, session, event)
        return [None] * len(items)

    async def _write_usage(
        self, usages: Sequence[tuple[str, PlanLimits, int, tuple[str, str, int] | None]]
    ) -> list[None]:
        await self.quotas.record_many(usages)
        return [None] * len(usages)

    async def _publish(self, event: Event) -> None:
        """Returns once `event` is committed to the outbox (with other calls' events)."""
        await self._event_writes((event, contextvars.copy_context()))

    async def limits(self, team_id: str) -> PlanLimits:
        """The team's plan from the read model, read per call by a query that starts
        after the call did: a change applies at once."""
        row = await self._plan_reads(team_id)
        config = self._config
        now = datetime.now(UTC)
        active = row is not None and row.status in ACTIVE_STATUSES
        plan_id = row.plan_id if row is not None and active else config.default_plan_id
        plan = config.plans.get(plan_id) or config.plans[config.default_plan_id]
        tokens = row.tokens_per_period if row is not None else None
        if tokens is None:
            tokens = plan.tokens_per_period
        period_end = row.period_end if row is not None and active else None
        if period_end is None or period_end <= now:
            period_end = month_end(now)
        rpm = (row.requests_per_minute if row is not None else None) or plan.requests_per_minute
        tpm = (row.tokens_per_minute if row is not None else None) or plan.tokens_per_minute
        return PlanLimits(plan_id, tokens, rpm, tpm, period_end)

    @requires("llm:call")
    async def usage(self, principal: Principal, *, team_id: str | None = None) -> LlmUsage:
        assert team_id is not None  # set by @requires
        limits = await self.limits(team_id)
        usage: Usage = await self.quotas.usage(team_id, limits)
        return LlmUsage(
            team_id,
            limits.plan_id,
            usage.tokens_used,
            limits.tokens_per_period,
            limits.period_end,
            limits.requests_per_minute,
            limits.tokens_per_minute,
            usage.requests_this_minute,
            usage.tokens_this_minute,
        )

    async def export_plans(self, caller: Caller, of: ExportSubject) -> list[LlmPlanExport]:
        """The LLM plans of the user's teams where they may call prompts, for their data
        export. The calls themselves are in analytics' part (llm_usage): this service keeps
        only per-team counters, in Redis."""
        require_self(caller, of.user_id)
        plans = []
        for team_id in of.teams_with("llm:call"):
            limits = await self.limits(team_id)
            plans.append(
                LlmPlanExport(
                    team_id,
                    limits.plan_id,
                    limits.tokens_per_period,
                    limits.requests_per_minute,
                    limits.tokens_per_minute,
                    limits.period_end,
                )
            )
        return plans

    def cost_usd(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        prompt_price, completion_price = self._config.prices.get(model, (0.0, 0.0))
        return round((prompt_tokens * prompt_price + completion_tokens * completion_price) / 1e6, 8)

    # --- calls --------------------------------------------------------------------------

    async def _begin(
        self, principal: Principal, path: str, variables: Mapping[str, Any] | None, team_id: str
    ) -> tuple[_Call, Completion | None]:
        """The admitted call, and its cached answer if there is one (one Redis round trip)."""
        prompt = self._library().get(path)
        values = prompt.validate(variables)
        messages = prompt.render(values)
        call = _Call(
            uuid.uuid4().hex,
            principal.user_id,
            team_id,
            prompt,
            messages,
            await self.limits(team_id),
            time.perf_counter(),
        )
        key = self._cache_key(call)
        try:
            raw = await self.quotas.admit(team_id, call.limits, also_get=key)
        except (QuotaExceeded, RateLimited) as error:
            await self._failed(call, error.code)
            raise
        return call, self._cached(key, raw)

    def _requests(self, call: _Call) -> list[ChatRequest]:
        spec = call.prompt.spec
        models = (self._config.force_model,) if self._config.force_model else call.prompt.models
        return [
            ChatRequest(model, call.messages, spec.temperature, spec.max_tokens) for model in models
        ]

    async def _wait_before_retry(self, error: ProviderError, attempt: int) -> None:
        if error.retry_after_s is not None:
            delay = error.retry_after_s
        else:
            delay = self._config.retry_backoff_s * 2**attempt * (0.5 + random.random() / 2)  # noqa: S311
        await asyncio.sleep(min(delay, self._config.retry_max_wait_s))

    def _cache_key(self, call: _Call) -> str | None:
        if call.prompt.spec.cache_ttl_s <= 0:
            return None
        model = self._config.force_model or call.prompt.spec.model
        material = call.prompt.cache_key_material(call.messages, model)
        return _CACHE + hashlib.sha256(material.encode()).hexdigest()

    def _cached(self, key: str | None, raw: bytes | None) -> Completion | None:
        if key is None:
            return None
        CACHE_REQUESTS.labels("llm_answers", "miss" if raw is None else "hit").inc()
        if raw is None:
            return None
        data = json.loads(raw)
        return Completion(
            data["text"], data["model"], data["prompt_tokens"], data["completion_tokens"]
        )

    def _cache_entry(self, call: _Call, completion: Completion) -> tuple[str, str, int] | None:
        key = self._cache_key(call)
        if key is None:
            return None
        value = json.dumps(
            {
                "text": completion.text,
                "model": completion.model,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
            }
        )
        return key, value, call.prompt.spec.cache_ttl_s

    async def _record(self, call: _Call, completion: Completion) -> None:
        """The usage against the quotas, and the answer into the cache: one round trip."""
        # Concurrent calls' usage goes in one MULTI/EXEC (a burst of streams ending
        # together needs one Redis connection, not one each).
        await self._usage_writes(
            (
                call.team_id,
                call.limits,
                completion.prompt_tokens + completion.completion_tokens,
                self._cache_entry(call, completion),
            )
        )

    async def _finish(self, call: _Call, completion: Completion) -> None:
        """The usage (Redis) and the `prompt.completed` commit (database), side by side:
        one at a time a call waits for the slower of the two, not for both in turn.
        Both are done when this returns; if one fails the other still completes."""
        recorded, completed = await asyncio.gather(
            self._record(call, completion),
            self._completed(call, completion, cached=False),
            return_exceptions=True,
        )
        for outcome in (recorded, completed):
            if isinstance(outcome, BaseException):
                raise outcome

    @requires("llm:call")
    async def call_prompt(
        self,
        principal: Principal,
        path: str,
        variables: Mapping[str, Any] | None = None,
        *,
        team_id: str | None = None,
    ) -> PromptResult:
        """Renders and runs a prompt: retries with backoff, then the fallback models."""
        assert team_id is not None  # set by @requires
        call, cached = await self._begin(principal, path, variables, team_id)
        if cached is not None:
            await self._completed(call, cached, cached=True)
            return self._result(call, cached, cached=True)
        last: ProviderError | None = None
        for request in self._requests(call):
            for attempt in range(self._config.max_retries + 1):
                try:
                    completion = await self._provider.complete(request)
                except ProviderError as error:
                    last = error
                    log.warning(
                        "llm attempt failed",
                        request_id=call.request_id,
                        model=request.model,
                        attempt=attempt,
                        code=error.code,
                    )
                    if not error.retryable or attempt == self._config.max_retries:
                        break
                    await self._wait_before_retry(error, attempt)
                    continue
                await self._finish(call, completion)
                return self._result(call, completion, cached=False)
        code = last.code if last is not None else "NO_MODEL"
        await self._failed(call, code)
        raise ProviderUnavailable(
            f"the model provider failed for prompt {path} ({code})", requestId=call.request_id
        )

    @requires("llm:call")
    async def stream_prompt(
        self,
        principal: Principal,
        path: str,
        variables: Mapping[str, Any] | None = None,
        *,
        team_id: str | None = None,
    ) -> AsyncIterator[StreamItem]:
        """Validates and admits the call now; the returned iterator streams it."""
        assert team_id is not None  # set by @requires
        call, cached = await self._begin(principal, path, variables, team_id)
        return self._stream(call, cached)

    async def _stream(self, call: _Call, cached: Completion | None) -> AsyncIterator[StreamItem]:
        if cached is not None:
            await self._completed(call, cached, cached=True)
            yield StreamItem(call.request_id, delta=cached.text)
            yield self._final(call, cached, cached=True)
            return
        last: ProviderError | None = None
        finished = False
        sent: list[str] = []
        try:
            for request in self._requests(call):
                for attempt in range(self._config.max_retries + 1):
                    try:
                        async for part in self._provider.stream(request):
                            if isinstance(part, Completion):
                                await self._finish(call, part)
                                finished = True
                                yield self._final(call, part, cached=False)
                                return
                            sent.append(part)
                            yield StreamItem(call.request_id, delta=part)
                    except StreamCut as cut:
                        # Text already went out: no retry; the tokens still count.
                        partial = cut.partial
                        await self.quotas.record(
                            call.team_id,
                            call.limits,
                            partial.prompt_tokens + partial.completion_tokens,
                        )
                        await self._failed(call, cut.code)
                        finished = True
                        raise ProviderUnavailable(
                            f"the model stream broke for prompt {call.prompt.path}",
                            request_id=call.request_id,
                        ) from None
                    except ProviderError as error:
                        last = error
                        if not error.retryable or attempt == self._config.max_retries:
                            break
                        await self._wait_before_retry(error, attempt)
            code = last.code if last is not None else "NO_MODEL"
            await self._failed(call, code)
            finished = True
            raise ProviderUnavailable(
                f"the model provider failed for prompt {call.prompt.path} ({code})",
                request_id=call.request_id,
            )
        finally:
            if not finished:  # the client went away mid-stream: what was generated counts
                used = messages_tokens(call.messages) + estimate_tokens("".join(sent))
                await asyncio.shield(self._abandoned(call, used))

    # --- results and events -------------------------------------------------------------

    def _result(self, call: _Call, completion: Completion, *, cached: bool) -> PromptResult:
        return PromptResult(
            call.request_id,
            completion.text,
            completion.model,
            completion.prompt_tokens,
            completion.completion_tokens,
            cached,
            0.0
            if cached
            else self.cost_usd(
                completion.model, completion.prompt_tokens, completion.completion_tokens
            ),
        )

    def _final(self, call: _Call, completion: Completion, *, cached: bool) -> StreamItem:
        result = self._result(call, completion, cached=cached)
        return StreamItem(
            call.request_id,
            done=True,
            model=result.model,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            cost_usd=result.cost_usd,
            cached=cached,
        )

    async def _completed(self, call: _Call, completion: Completion, *, cached: bool) -> None:
        latency_ms = round((time.perf_counter() - call.started) * 1000)
        cost = (
            0.0
            if cached
            else self.cost_usd(
                completion.model, completion.prompt_tokens, completion.completion_tokens
            )
        )
        if not cached:
            plan = call.limits.plan_id
            LLM_TOKENS.labels(completion.model, plan, "prompt").inc(completion.prompt_tokens)
            LLM_TOKENS.labels(completion.model, plan, "completion").inc(
                completion.completion_tokens
            )
            LLM_COST.labels(completion.model, plan).inc(cost)
        await self._publish(
            PromptCompleted(
                request_id=call.request_id,
                user_id=call.user_id,
                team_id=call.team_id,
                prompt_path=call.prompt.path,
                prompt_version=call.prompt.version,
                model=completion.model,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                latency_ms=latency_ms,
                cost_usd=cost,
                cached=cached,
            ),
        )

    async def _abandoned(self, call: _Call, tokens: int) -> None:
        await self.quotas.record(call.team_id, call.limits, tokens)
        await self._failed(call, "CLIENT_CLOSED")

    async def _failed(self, call: _Call, code: str) -> None:
        log.info("llm call failed", request_id=call.request_id, team_id=call.team_id, code=code)
        await self._publish(
            PromptFailed(
                request_id=call.request_id,
                user_id=call.user_id,
                team_id=call.team_id,
                prompt_path=call.prompt.path,
                error_code=code,
            ),
        )
