"""The analytics facade (services/analytics/service.py) on known data, both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from events.db import Database
from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from services.analytics import AnalyticsLimits, AnalyticsService, Period, record_batch
from services.errors import BadUserInput, Forbidden, RateLimited
from services.principal import Principal
from tests.services.analytics.data import DAY0, OTHER, known_events, viewer

MIDNIGHT = DAY0.replace(hour=0)


async def store(db: Database) -> None:
    async with db.transaction() as session:
        await record_batch(session, [(e, e.decode()) for e in known_events()])


@pytest.fixture
async def analytics(facades: Haunted) -> AnalyticsService:
    await store(facades.db)
    return facades.services.analytics


async def test_event_counts_of_the_callers_team_only(analytics: AnalyticsService) -> None:
    counts = {c.name: c.count for c in await analytics.event_counts(viewer())}
    assert counts == {
        "prompt.completed": 3,
        "share": 2,
        "signup": 2,
        "team.member_added": 2,
        "team.member_removed": 1,
        "upload": 3,
        # u1 twice, u2 once; x1 is another team's, u3 has left the team.
        "user.logged_in": 3,
        "user.registered": 1,
    }
    other = {c.name: c.count for c in await analytics.event_counts(viewer(OTHER, "x1"))}
    assert other == {"signup": 1, "user.logged_in": 1, "user.registered": 1}


async def test_another_teams_data_is_never_visible(analytics: AnalyticsService) -> None:
    with pytest.raises(Forbidden):
        await analytics.event_counts(viewer(), team_id=OTHER)
    with pytest.raises(Forbidden):
        await analytics.funnel(viewer(), ["signup"], team_id=OTHER)
    outsider = Principal(user_id="z", session_id="s", teams={})
    with pytest.raises(Forbidden):
        await analytics.usage(outsider)


async def test_active_users_per_day_and_week(analytics: AnalyticsService) -> None:
    days = await analytics.active_users(
        viewer(), Period.DAY, MIDNIGHT, MIDNIGHT + timedelta(days=3)
    )
    assert [(p.start.date().isoformat(), p.users) for p in days] == [
        ("2026-03-02", 3),
        ("2026-03-03", 1),
        ("2026-03-04", 0),
    ]
    weeks = await analytics.active_users(
        viewer(), Period.WEEK, MIDNIGHT, MIDNIGHT + timedelta(days=14)
    )
    # Week two: only the team.member_removed event names u3 and the team.
    assert [(p.start.date().isoformat(), p.users) for p in weeks] == [
        ("2026-03-02", 3),
        ("2026-03-09", 1),
    ]
    months = await analytics.active_users(
        viewer(), Period.MONTH, MIDNIGHT, MIDNIGHT + timedelta(days=40)
    )
    assert [(p.start.date().isoformat(), p.users) for p in months] == [
        ("2026-03-01", 3),
        ("2026-04-01", 0),
    ]


async def test_funnel_counts_steps_in_order_within_the_window(
    analytics: AnalyticsService,
) -> None:
    steps = await analytics.funnel(viewer(), ["signup", "upload", "share"], 24 * 3600)
    assert [(s.name, s.users, s.conversion) for s in steps] == [
        ("signup", 2, 1.0),
        ("upload", 2, 1.0),
        ("share", 1, 0.5),
    ]
    wide = await analytics.funnel(viewer(), ["signup", "upload", "share"], 7 * 24 * 3600)
    assert [s.users for s in wide] == [2, 2, 2]
    backwards = await analytics.funnel(viewer(), ["share", "signup"], 7 * 24 * 3600)
    assert [s.users for s in backwards] == [2, 0]


async def test_usage_sums_tokens_and_cost_per_day(analytics: AnalyticsService) -> None:
    days = await analytics.usage(viewer(), Period.DAY, MIDNIGHT, MIDNIGHT + timedelta(days=2))
    assert [
        (d.start.date().isoformat(), d.prompts, d.prompt_tokens, d.completion_tokens, d.cost_usd)
        for d in days
    ] == [("2026-03-02", 2, 150, 30, 0.75), ("2026-03-03", 1, 10, 1, 0.125)]


async def test_answers_are_cached_and_correct_without_redis(facades: Haunted) -> None:
    analytics = facades.services.analytics
    assert await analytics.event_counts(viewer()) == []  # cold: computed, then cached
    await store(facades.db)
    # Cached for five minutes: the same question gets the same (stale) answer.
    assert await analytics.event_counts(viewer()) == []
    # Other arguments are another cache entry.
    assert len(await analytics.event_counts(viewer(), ["signup"])) == 1

    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    no_cache = AnalyticsService(facades.db, down)
    try:
        counts = {c.name: c.count for c in await no_cache.event_counts(viewer())}
    finally:
        await down.aclose()
    assert counts["user.logged_in"] == 3


async def test_track_publishes_through_the_outbox(facades: Haunted) -> None:
    analytics = facades.services.analytics
    await analytics.track(viewer(), "checkout.opened", {"plan": "pro", "items": [1, 2]})
    async with facades.db.read() as session:
        rows = list(await session.scalars(select(OutboxRecord)))
    assert [(row.topic, row.key) for row in rows] == [("analytics.tracked", "u1")]
    assert b'"name":"checkout.opened"' in rows[0].value
    assert b'"team_id":"team-a"' in rows[0].value


BAD_TRACKS: list[tuple[str, object, str]] = [
    ("", {}, "name"),
    ("9lives", {}, "name"),
    ("user.logged_in", {}, "name"),  # a domain event type cannot be faked
    ("ok", ["not", "an", "object"], "properties"),
    ("ok", {"blob": "x" * 9000}, "properties"),
    ("ok", {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}, "properties"),
]


async def test_track_refuses_bad_input(facades: Haunted) -> None:
    for name, properties, field in BAD_TRACKS:
        with pytest.raises(BadUserInput) as refused:
            await facades.services.analytics.track(viewer(), name, properties)  # type: ignore[arg-type]
        assert refused.value.extensions["field"] == field, (name, properties)
    async with facades.db.read() as session:
        assert list(await session.scalars(select(OutboxRecord))) == []


async def test_track_is_rate_limited_per_user(facades: Haunted) -> None:
    analytics = AnalyticsService(
        facades.db,
        facades.redis,
        AnalyticsLimits(track_rate_limit="3/minute"),
        redis_url=facades.settings.redis_url,
    )
    for _ in range(3):
        await analytics.track(viewer(user="u-limit"), "clicked")
    with pytest.raises(RateLimited):
        await analytics.track(viewer(user="u-limit"), "clicked")
    await analytics.track(viewer(user="u-other"), "clicked")  # another user's own limit
