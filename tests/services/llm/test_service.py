"""The LLM facade on each backend: calls, retries, fallbacks, streams, cache, events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from events.db import Database
from events.envelope import Envelope
from haunted.runtime import build_redis
from haunted.services import build_llm
from schemas import Entitlements, SubscriptionActivated, SubscriptionCanceled, SubscriptionUpdated
from services.errors import BadUserInput, Forbidden, QuotaExceeded, RateLimited
from services.llm import OFFLINE_MODEL, LlmService, PromptResult, StreamItem, on_subscription
from services.llm.quotas import Quotas
from services.llm.service import ProviderUnavailable
from services.principal import Principal
from tests.conftest import REDIS_TEST_URL, eventually
from tests.services.llm.conftest import llm_settings, member, outbox
from tests.services.llm.openai_server import FakeOpenAI, Fault


async def apply(
    db: Database,
    event: SubscriptionActivated | SubscriptionUpdated | SubscriptionCanceled,
    entitlements: dict[str, int] | None = None,
    time: datetime | None = None,
) -> None:
    """Handles the event as the consumer does; entitlements ride in the event, as billing
    sends them."""
    if entitlements is not None:
        event = event.model_copy(update={"entitlements": Entitlements(**entitlements)})
    envelope = Envelope.wrap(event, time=time)
    async with db.transaction() as session:
        await on_subscription(session, event, envelope)


def activated(plan: str = "pro", team_id: str = "t1") -> SubscriptionActivated:
    return SubscriptionActivated(
        team_id=team_id,
        subscription_id="sub1",
        plan_id=plan,
        status="active",
        current_period_end=datetime.now(UTC) + timedelta(days=20),
    )


def tokens(limit: int, **more: int) -> dict[str, int]:
    return {"llm_tokens_per_month": limit, **more}


async def test_call_prompt_returns_text_usage_and_publishes_completed(
    llm: LlmService, db: Database, fake_openai: FakeOpenAI
) -> None:
    result = await llm.call_prompt(member(), "hello", {"name": "Ada"})
    assert result.text == "reply from m-primary: Say hello to Ada 1 times."
    assert result.model == "m-primary"
    assert (result.prompt_tokens, result.completion_tokens) == (9, 9)
    assert result.cost_usd == pytest.approx((9 * 1.0 + 9 * 2.0) / 1e6)
    sent = fake_openai.requests[0]
    assert sent["messages"][0] == {"role": "system", "content": "You greet people."}
    assert (sent["temperature"], sent["max_tokens"]) == (0.1, 50)
    [event] = await outbox(db)
    assert event == {
        "topic": "prompt.completed",
        "request_id": result.request_id,
        "user_id": "u1",
        "team_id": "t1",
        "prompt_path": "hello",
        "prompt_version": "2.1",
        "model": "m-primary",
        "prompt_tokens": 9,
        "completion_tokens": 9,
        "latency_ms": event["latency_ms"],
        "cost_usd": result.cost_usd,
        "cached": False,
    }
    usage = await llm.usage(member())
    assert (usage.plan_id, usage.tokens_used, usage.tokens_per_period) == ("free", 18, 100_000)


async def test_bad_variables_and_missing_permission_are_refused_before_any_call(
    llm: LlmService, fake_openai: FakeOpenAI
) -> None:
    with pytest.raises(BadUserInput, match="name is required"):
        await llm.call_prompt(member(), "hello", {})
    viewer = Principal(user_id="u2", session_id="s", teams={"t1": "viewer"})
    with pytest.raises(Forbidden):
        await llm.call_prompt(viewer, "hello", {"name": "Ada"})
    assert fake_openai.requests == []


async def test_retries_honour_retry_after_then_succeed(
    llm: LlmService, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail("m-primary", Fault(status=429, retry_after="0"), Fault(status=503))
    result = await llm.call_prompt(member(), "hello", {"name": "Ada"})
    assert result.model == "m-primary"
    assert fake_openai.models_called() == ["m-primary"] * 3


async def test_fallback_models_in_order_then_prompt_failed(
    llm: LlmService, db: Database, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail("m-primary", *[Fault(status=500)] * 3)
    result = await llm.call_prompt(member(), "hello", {"name": "Ada"})
    assert result.model == "m-backup"
    assert fake_openai.models_called() == ["m-primary"] * 3 + ["m-backup"]

    fake_openai.requests.clear()
    fake_openai.fail("m-primary", Fault(status=400))
    fake_openai.fail("m-backup", *[Fault(status=500)] * 3)
    with pytest.raises(ProviderUnavailable) as raised:
        await llm.call_prompt(member(), "hello", {"name": "Ada"})
    assert fake_openai.models_called() == ["m-primary"] + ["m-backup"] * 3
    failed = await outbox(db, "prompt.failed")
    assert failed == [
        {
            "topic": "prompt.failed",
            "request_id": raised.value.extensions["requestId"],
            "user_id": "u1",
            "team_id": "t1",
            "prompt_path": "hello",
            "error_code": "PROVIDER_500",
        }
    ]


async def test_quota_from_plan_events_exhausts_and_a_plan_change_applies_next_call(
    llm: LlmService, db: Database
) -> None:
    await apply(db, activated(), tokens(10))
    await llm.call_prompt(member(), "hello", {"name": "Ada"})  # 18 tokens: now over 10
    with pytest.raises(QuotaExceeded) as raised:
        await llm.call_prompt(member(), "hello", {"name": "Ada"})
    period_end = (await llm.limits("t1")).period_end
    assert raised.value.extensions["resetsAt"] == period_end.isoformat().replace("+00:00", "Z")
    assert [e["error_code"] for e in await outbox(db, "prompt.failed")] == ["QUOTA_EXCEEDED"]

    upgrade = SubscriptionUpdated(
        team_id="t1",
        subscription_id="sub1",
        plan_id="team",
        status="active",
        current_period_end=period_end,
    )
    await apply(db, upgrade, tokens(1000))
    result = await llm.call_prompt(member(), "hello", {"name": "Ada"})
    assert result.text
    assert (await llm.usage(member())).plan_id == "team"

    # An older event (a replay out of order) changes nothing.
    await apply(db, activated("pro"), tokens(10), time=datetime.now(UTC) - timedelta(days=1))
    assert (await llm.limits("t1")).plan_id == "team"

    canceled = SubscriptionCanceled(
        team_id="t1",
        subscription_id="sub1",
        plan_id="team",
        canceled_at=datetime.now(UTC),
    )
    await apply(db, canceled, tokens(5))
    limits = await llm.limits("t1")
    assert (limits.plan_id, limits.tokens_per_period) == ("free", 5)


async def test_the_budget_resets_with_the_period(llm: LlmService, db: Database) -> None:
    await apply(db, activated(), tokens(10))
    await llm.call_prompt(member(), "hello", {"name": "Ada"})
    with pytest.raises(QuotaExceeded):
        await llm.call_prompt(member(), "hello", {"name": "Ada"})
    renewed = SubscriptionUpdated(
        team_id="t1",
        subscription_id="sub1",
        plan_id="pro",
        status="active",
        current_period_end=datetime.now(UTC) + timedelta(days=50),
    )
    await apply(db, renewed, tokens(10))  # a new period: its own counter
    assert (await llm.call_prompt(member(), "hello", {"name": "Ada"})).text


async def test_rate_limit_is_shared_by_two_gateway_processes(
    db: Database, database_url: str, prompts_dir: Path, fake_openai: FakeOpenAI
) -> None:
    # Two processes share only Redis: the real one, whichever backend holds the rows.
    redis = build_redis(REDIS_TEST_URL)
    team = f"team-{uuid.uuid4().hex}"  # db 15 is shared with other tests: never flushed here
    await apply(db, activated(team_id=team), tokens(1_000_000, llm_requests_per_minute=3))
    caller = member(team_id=team)
    settings = llm_settings(
        database_url, REDIS_TEST_URL, prompts_dir, openai_base_url=fake_openai.url
    )
    first, second = (
        build_llm(settings, db, redis),
        build_llm(settings, db, build_redis(REDIS_TEST_URL)),
    )
    # One fixed moment mid-minute: the fixed window never rolls over during the test.
    moment = (time.time() // 60) * 60 + 30
    for service in (first, second):
        service.quotas = Quotas(service.quotas.redis, clock=lambda: moment)
    try:
        await first.call_prompt(caller, "hello", {"name": "Ada"})
        await second.call_prompt(caller, "hello", {"name": "Ada"})
        await first.call_prompt(caller, "hello", {"name": "Ada"})
        with pytest.raises(RateLimited) as raised:
            await second.call_prompt(caller, "hello", {"name": "Ada"})
        assert 1 <= raised.value.extensions["retryAfter"] <= 60
        assert len(fake_openai.requests) == 3
    finally:
        await first.close()
        await second.close()
        await redis.aclose()


async def stream(llm: LlmService, **variables: object) -> list[StreamItem]:
    items = []
    async for item in await llm.stream_prompt(member(), "hello", variables):
        items.append(item)
    return items


async def test_stream_sends_deltas_then_usage_and_meters_it(llm: LlmService, db: Database) -> None:
    items = await stream(llm, name="Ada")
    *deltas, final = items
    assert (
        "".join(item.delta or "" for item in deltas)
        == "reply from m-primary: Say hello to Ada 1 times."
    )
    assert final.done and (final.prompt_tokens, final.completion_tokens) == (9, 9)
    [event] = await outbox(db)
    assert event["topic"] == "prompt.completed" and event["completion_tokens"] == 9
    assert (await llm.usage(member())).tokens_used == 18


async def test_stream_cut_midway_still_counts_and_publishes_failed(
    llm: LlmService, db: Database, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail("m-primary", Fault(cut_after=3))
    received: list[StreamItem] = []
    with pytest.raises(ProviderUnavailable):
        async for item in await llm.stream_prompt(member(), "hello", {"name": "Ada"}):
            received.append(item)
    assert "".join(item.delta or "" for item in received) == "reply from m-primary:"
    assert len(fake_openai.requests) == 1  # text went out: no silent retry
    assert [e["error_code"] for e in await outbox(db, "prompt.failed")] == ["STREAM_CUT"]
    assert (await llm.usage(member())).tokens_used > 0


async def test_stream_retries_before_the_first_delta(
    llm: LlmService, fake_openai: FakeOpenAI
) -> None:
    fake_openai.fail("m-primary", Fault(status=429, retry_after="0"))
    items = await stream(llm, name="Ada")
    assert items[-1].done and items[-1].model == "m-primary"
    assert len(fake_openai.requests) == 2


async def test_cache_hit_is_marked_and_costs_nothing(
    llm: LlmService, db: Database, fake_openai: FakeOpenAI
) -> None:
    first = await llm.call_prompt(member(), "cached", {"name": "Ada"})
    second = await llm.call_prompt(member(), "cached", {"name": "Ada"})
    other = await llm.call_prompt(member(), "cached", {"name": "Bob"})
    assert len(fake_openai.requests) == 2
    assert second.text == first.text and second.cached and not first.cached and not other.cached
    assert second.cost_usd == 0.0
    events = await outbox(db, "prompt.completed")
    assert [(e["cached"], e["cost_usd"] == 0.0) for e in events] == [
        (False, False),
        (True, True),
        (False, False),
    ]
    assert (
        await llm.usage(member())
    ).tokens_used == first.prompt_tokens * 2 + 2 * first.completion_tokens


async def test_offline_echo_without_key_or_base_url(
    db: Database, database_url: str, redis_url: str, prompts_dir: Path
) -> None:
    redis = build_redis(redis_url)
    offline = build_llm(llm_settings(database_url, redis_url, prompts_dir), db, redis)
    try:
        result = await offline.call_prompt(member(), "hello", {"name": "Ada"})
    finally:
        await redis.aclose()
    assert result.model == OFFLINE_MODEL
    assert result.text == f"[{OFFLINE_MODEL}] Say hello to Ada 1 times."
    [event] = await outbox(db)
    assert event["model"] == OFFLINE_MODEL and event["cost_usd"] == 0.0


async def test_a_client_leaving_mid_stream_is_still_metered(llm: LlmService, db: Database) -> None:
    stream = await llm.stream_prompt(member(), "hello", {"name": "Ada"})
    assert isinstance(stream, AsyncGenerator)
    first = await anext(stream)
    assert first.delta == "reply"
    await stream.aclose()
    assert [e["error_code"] for e in await outbox(db, "prompt.failed")] == ["CLIENT_CLOSED"]
    assert await outbox(db, "prompt.completed") == []
    assert (await llm.usage(member())).tokens_used > 0


async def test_concurrent_calls_never_take_more_slots_than_each_teams_rate_limit(
    db: Database, llm: LlmService, fake_openai: FakeOpenAI
) -> None:
    # Plans of two teams read by shared queries: each call still gets its own team's.
    await apply(db, activated(team_id="t1"), tokens(1_000_000, llm_requests_per_minute=4))
    await apply(db, activated(team_id="t2"), tokens(1_000_000, llm_requests_per_minute=1000))
    moment = (time.time() // 60) * 60 + 30  # mid-minute: the window never rolls over here
    llm.quotas = Quotas(llm.quotas.redis, clock=lambda: moment)
    callers = [member(team_id="t1")] * 20 + [member(team_id="t2")] * 10
    results = await asyncio.gather(
        *(llm.call_prompt(caller, "hello", {"name": "Ada"}) for caller in callers),
        return_exceptions=True,
    )
    first_team, second_team = results[:20], results[20:]
    assert sum(isinstance(result, RateLimited) for result in first_team) == 16
    assert sum(isinstance(result, PromptResult) for result in first_team) == 4
    assert all(isinstance(result, PromptResult) for result in second_team)
    assert len(fake_openai.requests) == 14
    completed = await outbox(db, "prompt.completed")
    failed = await outbox(db, "prompt.failed")
    assert sorted(event["team_id"] for event in completed) == ["t1"] * 4 + ["t2"] * 10
    assert [event["error_code"] for event in failed] == ["RATE_LIMITED"] * 16
    assert len({event["request_id"] for event in completed + failed}) == 30
    assert (await llm.usage(member(team_id="t1"))).requests_this_minute == 4


async def test_each_concurrent_call_answers_only_after_its_event_is_committed(
    llm: LlmService, db: Database
) -> None:
    answered = 0

    async def call(name: str) -> None:
        nonlocal answered
        await llm.call_prompt(member(), "hello", {"name": name})
        answered += 1
        at_least = answered  # calls that have answered by now, this one included
        assert len(await outbox(db, "prompt.completed")) >= at_least

    await asyncio.gather(*(call(f"user {n}") for n in range(12)))
    assert len(await outbox(db, "prompt.completed")) == 12


async def test_the_usage_and_the_event_are_written_side_by_side(
    llm: LlmService, db: Database
) -> None:
    """One at a time, a call waits for the slower of its two writes, not for both in turn:
    here the usage is held until the call's event is committed, which happens only if
    the commit does not wait for the usage. Both are done when the call answers."""
    record_many = llm.quotas.record_many

    async def after_the_event(usages: Any) -> None:
        await eventually(lambda: outbox(db, "prompt.completed"))
        await record_many(usages)

    llm.quotas.record_many = after_the_event  # type: ignore[method-assign]
    result = await llm.call_prompt(member(), "hello", {"name": "Ada"})
    assert len(await outbox(db, "prompt.completed")) == 1
    usage = await llm.usage(member())
    assert usage.tokens_used == result.prompt_tokens + result.completion_tokens
