"""The analytics facade (services/analytics/service.py) on known data, both backends."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import select, text

from events.db import Database
from events.dialect import SqlDialect
from events.envelope import Envelope
from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from schemas import AnalyticsTracked, TeamMemberAdded, TeamMemberRemoved, UserLoggedIn
from services.analytics import AnalyticsLimits, AnalyticsService, Period, record_batch
from services.analytics.service import _furthest_step
from services.errors import BadUserInput, Forbidden, RateLimited
from services.principal import Principal
from tests.services.analytics.data import DAY0, OTHER, TEAM, at, known_events, step, viewer

MIDNIGHT = DAY0.replace(hour=0)


async def store(db: Database, envelopes: list[Envelope] | None = None) -> None:
    envelopes = known_events() if envelopes is None else envelopes
    async with db.transaction() as session:
        await record_batch(session, [(e, e.decode()) for e in envelopes])


def uncached(facades: Haunted) -> AnalyticsService:
    return AnalyticsService(facades.db, facades.redis, AnalyticsLimits(cache_ttl_s=0))


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


def tied(user: str, name: str, moment: datetime, event_id: str) -> Envelope:
    """A step with a chosen id: at the same instant, steps are ordered by id."""
    event = AnalyticsTracked(name=name, user_id=user, team_id=TEAM, properties={})
    return Envelope.wrap(event, time=moment, event_id=event_id)


async def test_funnel_in_sql_keeps_the_documented_semantics(facades: Haunted) -> None:
    """Steps in order, each within the window of the user's first step (inclusive),
    the best first step counts, ties in time ordered by event id."""
    m = timedelta(minutes=1)
    hour = timedelta(hours=1)
    events = [
        # A repeated first step: only the second start converts in time.
        step("repeat", "a", DAY0),
        step("repeat", "a", DAY0 + 120 * m),
        step("repeat", "b", DAY0 + 150 * m),
        step("repeat", "c", DAY0 + 174 * m),
        # The last step a microsecond outside the window; exactly on it counts.
        step("late", "a", DAY0),
        step("late", "b", DAY0 + 30 * m),
        step("late", "c", DAY0 + hour + timedelta(microseconds=1)),
        step("edge", "a", DAY0),
        step("edge", "b", DAY0 + 30 * m),
        step("edge", "c", DAY0 + hour),
        # Out of order: b before a and c before b do not count.
        step("order", "b", DAY0),
        step("order", "a", DAY0 + 10 * m),
        step("order", "c", DAY0 + 20 * m),
        step("order", "b", DAY0 + 30 * m),
        # Ties in time: the event id decides which came first.
        tied("tie-ab", "a", DAY0, "tie-ab-1"),
        tied("tie-ab", "b", DAY0, "tie-ab-2"),
        tied("tie-ba", "b", DAY0, "tie-ba-1"),
        tied("tie-ba", "a", DAY0, "tie-ba-2"),
        # Never did the first step: not in the funnel at all.
        step("never", "b", DAY0),
        step("never", "c", DAY0 + m),
        # Another team's steps stay out.
        step("other", "a", DAY0, team=OTHER),
        step("other", "b", DAY0 + m, team=OTHER),
    ]
    await store(facades.db, events)
    analytics = uncached(facades)
    steps = await analytics.funnel(viewer(), ["a", "b", "c"], 3600)
    # Furthest steps: repeat 3, late 2, edge 3, order 2, tie-ab 2, tie-ba 1.
    assert [(s.name, s.users) for s in steps] == [("a", 6), ("b", 5), ("c", 2)]
    assert [s.conversion for s in steps] == [1.0, 5 / 6, 2 / 6]
    # A repeated step needs two events; one event is never two steps.
    twice = await analytics.funnel(viewer(), ["a", "a", "c"], 3 * 3600)
    assert [s.users for s in twice] == [6, 1, 1]
    # `since` drops earlier events: repeat's first `a` and the rest of day 0.
    later = await analytics.funnel(viewer(), ["a", "b", "c"], 3600, DAY0 + 100 * m)
    assert [s.users for s in later] == [1, 1, 1]
    single = await analytics.funnel(viewer(), ["b"], 60)
    assert [s.users for s in single] == [7]


def random_history(seed: int) -> tuple[list[Envelope], dict[str, list[tuple[str, datetime, str]]]]:
    """Events of 60 users (members, a former member, outsiders) on a coarse clock, so
    that ties and window edges are common; and each user's events as TEAM sees them."""
    rng = random.Random(seed)
    envelopes: list[Envelope] = []
    visible: dict[str, list[tuple[str, datetime, str]]] = defaultdict(list)
    kinds = ["a", "b", "c", "user.logged_in", "noise"]
    for number in range(60):
        user = f"r{number:02d}"
        member = number % 6 != 0  # outsiders' logins are not TEAM's
        if member:
            added = at(TeamMemberAdded(team_id=TEAM, user_id=user, role="member"), DAY0)
            envelopes.append(added)
            visible[user].append((added.type, added.time, added.id))
        if number % 10 == 1:  # a former member: their logins no longer count
            removed = at(TeamMemberRemoved(team_id=TEAM, user_id=user), DAY0 + timedelta(days=30))
            envelopes.append(removed)
            visible[user].append((removed.type, removed.time, removed.id))
            member = False
        for index in range(rng.randint(0, 14)):
            kind = rng.choice(kinds)
            moment = DAY0 + timedelta(minutes=15 * rng.randint(0, 24))
            event_id = f"{seed:02d}{number:02d}{rng.randint(0, 10**6):07d}{index:02d}"
            team = None if kind == "user.logged_in" else rng.choice([TEAM, TEAM, TEAM, OTHER])
            if kind == "user.logged_in":
                event: AnalyticsTracked | UserLoggedIn = UserLoggedIn(user_id=user, session_id="s")
            else:
                event = AnalyticsTracked(name=kind, user_id=user, team_id=team, properties={})
            envelopes.append(Envelope.wrap(event, time=moment, event_id=event_id))
            if team == TEAM or (team is None and member):
                visible[user].append((kind, moment, event_id))
    return envelopes, visible


FUNNELS: list[tuple[list[str], int]] = [
    (["a", "b", "c"], 3600),
    (["a", "b", "c"], 1),
    (["a", "user.logged_in", "b"], 1800),
    (["user.logged_in", "a"], 7200),
    (["a", "a", "b", "a"], 2700),
    (["c"], 60),
    (["b", "c", "a", "noise"], 4 * 3600),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_funnel_in_sql_agrees_with_the_reference_walk(facades: Haunted, seed: int) -> None:
    envelopes, visible = random_history(seed)
    await store(facades.db, envelopes)
    analytics = uncached(facades)
    for steps, window_s in FUNNELS:
        expected = [0] * len(steps)
        for events in visible.values():
            # Ties in time: by event id, as stored.
            by_id = sorted(events, key=lambda event: (event[1], event[2]))
            ordered = [(kind, moment) for kind, moment, _ in by_id if kind in steps]
            for level in range(_furthest_step(ordered, steps, timedelta(seconds=window_s))):
                expected[level] += 1
        found = await analytics.funnel(viewer(), steps, window_s)
        assert [s.users for s in found] == expected, (seed, steps, window_s)


async def test_event_counts_and_active_users_take_each_event_once(facades: Haunted) -> None:
    """A member's team-less login and their team events: both halves, nothing twice."""
    envelopes, visible = random_history(7)
    await store(facades.db, envelopes)
    analytics = uncached(facades)
    expected: dict[str, int] = defaultdict(int)
    for events in visible.values():
        for kind, _, _ in events:
            expected[kind] += 1
    counts = await analytics.event_counts(viewer())
    assert {c.name: c.count for c in counts} == expected
    day = MIDNIGHT, MIDNIGHT + timedelta(days=1)
    active = {
        user for user, events in visible.items() if any(day[0] <= e[1] < day[1] for e in events)
    }
    found = await analytics.active_users(viewer(), Period.DAY, *day)
    assert [d.users for d in found] == [len(active)]


async def test_the_migrated_indexes_are_partial_as_the_models_say(facades: Haunted) -> None:
    """Alembic's model/migration check compares index columns, not their WHERE: this
    does. Each event goes into exactly one of the two (team_id set, or NULL)."""
    if facades.db.dialect is SqlDialect.SQLITE:
        query = "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'analytics_events'"
    else:
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'analytics_events'"
    async with facades.db.read() as session:
        found = {name: sql for name, sql in (await session.execute(text(query))).all() if sql}
    wheres = {
        name: sql.split(" WHERE ", 1)[1].strip("()").upper()
        for name, sql in found.items()
        if name.startswith("ix_")
    }
    assert wheres == {
        "ix_analytics_events_team_covering": "TEAM_ID IS NOT NULL",
        "ix_analytics_events_teamless_user": "TEAM_ID IS NULL",
    }


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
