"""Analytics questions over millions of stored events (issue 7), against hand-written SQL.

    python -m bench.analytics_queries [--events N] [--calls N] [--backend real|embedded|both]
                                      [--explain] [--ingest N]

A scratch database (bench.common.stores: created, migrated with the project's
migrations, dropped afterwards) is filled with N events by SQL on the server
(INSERT ... SELECT over generate_series on PostgreSQL, a recursive CTE on
SQLite), in the shape of a multi-tenant product: 1,000 teams of very
different sizes (team sizes skewed, a power law), N/50 users each active on 5
days out of 90 in one team (5% also in a second team, 2% removed from theirs),
20 event types with a 4-step funnel among them, 10% team-less
`user.logged_in` events, and `prompt.completed` events with tokens and cost.
The secondary indexes are dropped for the fill and rebuilt from their own
definitions afterwards (faster than maintaining them row by row; the schema
stays the migrated one), then VACUUM ANALYZE.

Then, for the largest team and a typical (median) team, each question through
the real facade (`AnalyticsService`, cache off: `cache_ttl_s=0`) and the same
answer by hand-written SQL over the raw driver (asyncpg; sqlite3 on the
embedded backend), call after call in turns, p50/p99; the answers must be
equal. Also: the facade with its Redis cache warm, and the funnel checked
against the previous implementation (the team's step rows walked in Python by
`_furthest_step`, the reference semantics).

`--explain` prints the facade's plans for the largest team (PostgreSQL).
`--ingest N` (PostgreSQL) inserts N more events in 1,000-row multi-row INSERTs
with the migrated indexes, then again with migration 0700's four indexes
instead, and prints both rates: what the indexes cost ingestion. On those
indexes it then times the previous queries (the OR scope, the funnel walked in
Python): the "before" of issue 7.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import and_, event, func, or_, select
from sqlalchemy.engine import make_url

from bench.common import (
    BACKENDS,
    PG_HOST,
    PG_PORT,
    PG_USER,
    Backend,
    heading,
    line,
    percentile,
    quiet_logs,
    stores,
)
from events.db import Database
from haunted.runtime import build_redis
from services.analytics import AnalyticsLimits, AnalyticsService, Period
from services.analytics.models import AnalyticsEvent, TeamMember
from services.analytics.service import (
    ActiveUsers,
    EventCount,
    FunnelStep,
    Usage,
    _furthest_step,
)
from services.principal import Principal

TEAMS = 1_000
EVENTS_PER_USER = 50
DAYS = 90
ACTIVE_DAYS = 5  # per user, out of DAYS
TEAMLESS = "user.logged_in"
FUNNEL = ["page.viewed", "project.created", "file.uploaded", "report.shared"]
FUNNEL_WINDOW_S = 24 * 3600
# Percent of all events per type (100 in all): the team-less logins are 10%.
TYPES: dict[str, int] = {
    TEAMLESS: 10,
    "page.viewed": 22,
    "feature.used": 8,
    "search.performed": 7,
    "api.called": 6,
    "dashboard.opened": 5,
    "project.created": 5,
    "file.uploaded": 5,
    "comment.added": 5,
    "notification.read": 4,
    "report.shared": 4,
    "prompt.completed": 4,
    "teammate.invited": 3,
    "file.downloaded": 3,
    "export.downloaded": 3,
    "report.generated": 2,
    "settings.changed": 1,
    "billing.viewed": 1,
    "checkout.opened": 1,
    "flag.evaluated": 1,
}
assert sum(TYPES.values()) == 100
SLOTS = [name for name, percent in TYPES.items() for _ in range(percent)]
CHUNK = 500_000  # events per INSERT ... SELECT
# The indexes of migration 0700 (before issue 7), for --ingest.
PREVIOUS_INDEXES = {
    "bench_prev_team_type_time": "(team_id, type, time)",
    "bench_prev_user_type_time": "(user_id, type, time)",
    "bench_prev_team_time": "(team_id, time)",
    "bench_prev_user_time": "(user_id, time)",
}


@dataclass(frozen=True, slots=True)
class Team:
    label: str
    team_id: str
    members: int
    events: int


@dataclass(frozen=True, slots=True)
class Shape:
    events: int
    users: int
    now: datetime


def shape_for(events: int) -> Shape:
    now = datetime.now(UTC).replace(microsecond=0)
    return Shape(events, max(1_000, events // EVENTS_PER_USER), now)


def sql_list(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


# PostgreSQL: filling


def pg_fill_users(shape: Shape) -> str:
    # (u * 7919) % users is a permutation of the users: team sizes follow
    # frac^2.5, so team 0 holds about 6% of the users and the median team 0.05%.
    return f"""
        CREATE UNLOGGED TABLE bench_users AS
        SELECT u,
               md5('user' || u)::uuid::text AS user_id,
               team,
               md5('team' || team)::uuid::text AS team_id,
               md5('team' || (u * 31) % {TEAMS})::uuid::text AS second_team_id
        FROM (
            SELECT u, floor({TEAMS} * power(((u::bigint * 7919) % {shape.users})::float8
                                            / {shape.users}, 2.5))::int AS team
            FROM generate_series(0, {shape.users - 1}) AS u
        ) AS numbered;
        ALTER TABLE bench_users ADD PRIMARY KEY (u);
    """  # noqa: S608 - constants and placeholders only


PG_FILL_EVENTS = f"""
    INSERT INTO analytics_events (id, type, time, source, subject, user_id, team_id, properties)
    SELECT md5($1 || i)::uuid::text,
           drawn.type,
           $2::timestamptz
             - ((users.u * 37 + drawn.slot * {DAYS // ACTIVE_DAYS}) % {DAYS}) * interval '1 day'
             - drawn.within * interval '1 day',
           CASE WHEN drawn.type = '{TEAMLESS}' THEN 'haunted/auth' ELSE 'haunted/app' END,
           users.user_id,
           users.user_id,
           CASE WHEN drawn.type = '{TEAMLESS}' THEN NULL ELSE users.team_id END,
           CASE WHEN drawn.type = 'prompt.completed'
                THEN json_build_object('prompt_tokens', (drawn.within * 2000)::int,
                                       'completion_tokens', (drawn.within * 500)::int,
                                       'cost_usd', round((drawn.within * 0.01)::numeric, 6))
                ELSE '{{"source": "web"}}'::json END
    FROM (
        SELECT i,
               floor(random() * $3)::int AS u,
               (ARRAY[{sql_list(SLOTS)}])[1 + floor(random() * 100)::int] AS type,
               floor(random() * {ACTIVE_DAYS})::int AS slot,
               random() AS within
        FROM generate_series($4::bigint, $5::bigint) AS i
        OFFSET 0  -- a fence: each random() once per row
    ) AS drawn
    JOIN bench_users AS users ON users.u = drawn.u
"""  # noqa: S608 - constants and placeholders only

PG_FILL_MEMBERS = """
    INSERT INTO analytics_team_members (team_id, user_id, active, changed_at)
    SELECT team_id, user_id, u % 50 <> 1, $1::timestamptz FROM bench_users
    UNION ALL
    SELECT second_team_id, user_id, true, $1::timestamptz FROM bench_users
    WHERE u % 20 = 0 AND second_team_id <> team_id
"""


async def pg_connect(url: str) -> asyncpg.Connection:
    database = make_url(url).database
    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)


async def pg_fill(url: str, shape: Shape) -> None:
    conn = await pg_connect(url)
    try:
        await conn.execute(pg_fill_users(shape))
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'analytics_events'"
            " AND indexname <> 'pk_analytics_events'"
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        await conn.execute("ALTER TABLE analytics_events DROP CONSTRAINT pk_analytics_events")

        started = time.perf_counter()
        seed = uuid.uuid4().hex[:8]
        chunks = [
            (low, min(low + CHUNK - 1, shape.events)) for low in range(1, shape.events + 1, CHUNK)
        ]

        async def worker(share: list[tuple[int, int]]) -> None:
            own = await pg_connect(url)
            try:
                for low, high in share:
                    await own.execute(PG_FILL_EVENTS, seed, shape.now, shape.users, low, high)
            finally:
                await own.close()

        # Two connections: INSERT ... SELECT runs on one core each.
        await asyncio.gather(worker(chunks[0::2]), worker(chunks[1::2]))
        await conn.execute(PG_FILL_MEMBERS, shape.now)
        stored = await conn.fetchval("SELECT count(*) FROM analytics_events")
        assert stored == shape.events, f"stored {stored} events, not {shape.events}"
        line("fill (2 connections)", f"{time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute(
            "ALTER TABLE analytics_events ADD CONSTRAINT pk_analytics_events PRIMARY KEY (id)"
        )
        for row in indexes:
            await conn.execute(row["indexdef"])
        line("primary key + indexes rebuilt", f"{time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        await conn.execute("DROP TABLE bench_users")
        await conn.execute("VACUUM ANALYZE analytics_events")
        await conn.execute("VACUUM ANALYZE analytics_team_members")
        line("VACUUM ANALYZE", f"{time.perf_counter() - started:.1f} s")
        sizes = await conn.fetch(
            "SELECT indexname, pg_relation_size(indexname::regclass) AS bytes FROM pg_indexes"
            " WHERE tablename = 'analytics_events' ORDER BY indexname"
        )
        table = await conn.fetchval("SELECT pg_relation_size('analytics_events')")
        line("table", f"{table / 2**20:,.0f} MB")
        for row in sizes:
            line(f"  {row['indexname']}", f"{row['bytes'] / 2**20:,.0f} MB")
    finally:
        await conn.close()


# SQLite: filling


def sqlite_path(url: str) -> str:
    return str(make_url(url).database)


def sqlite_fill(url: str, shape: Shape) -> None:
    conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")  # 1 GB
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.execute(
            "CREATE TEMP TABLE bench_users (u INTEGER PRIMARY KEY, user_id TEXT, team_id TEXT,"
            " second_team_id TEXT)"
        )
        user_id = "{:08x}-0000-4000-8000-{:012x}"
        team_id = "{:08x}-1111-4000-8000-{:012x}"
        rows = []
        for u in range(shape.users):
            team = int(TEAMS * (((u * 7919) % shape.users) / shape.users) ** 2.5)
            second = (u * 31) % TEAMS
            rows.append(
                (
                    u,
                    user_id.format(u, u),
                    team_id.format(team, team),
                    team_id.format(second, second),
                )
            )
        conn.executemany("INSERT INTO bench_users VALUES (?, ?, ?, ?)", rows)
        conn.execute("CREATE TEMP TABLE bench_types (slot INTEGER PRIMARY KEY, type TEXT)")
        conn.executemany("INSERT INTO bench_types VALUES (?, ?)", list(enumerate(SLOTS)))
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
            " AND tbl_name = 'analytics_events' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')

        started = time.perf_counter()
        now = int(shape.now.timestamp())
        conn.execute("BEGIN")
        conn.execute(
            f"""
            INSERT INTO analytics_events (id, type, time, source, subject, user_id, team_id,
                                          properties)
            WITH RECURSIVE numbers(i) AS (
                SELECT 1 UNION ALL SELECT i + 1 FROM numbers WHERE i < {shape.events}
            ),
            drawn AS (
                SELECT i,
                       abs(random()) % {shape.users} AS u,
                       abs(random()) % 100 AS slot,
                       abs(random()) % {ACTIVE_DAYS} AS day_slot,
                       abs(random()) % 86400000000 AS within_us
                FROM numbers
            )
            SELECT lower(hex(randomblob(16))),
                   types.type,
                   strftime('%Y-%m-%d %H:%M:%S',
                            {now} - ((users.u * 37 + drawn.day_slot * {DAYS // ACTIVE_DAYS})
                                     % {DAYS}) * 86400 - drawn.within_us / 1000000 - 1,
                            'unixepoch')
                     || '.' || printf('%06d', 1000000 - 1 - drawn.within_us % 1000000),
                   CASE WHEN types.type = '{TEAMLESS}' THEN 'haunted/auth' ELSE 'haunted/app' END,
                   users.user_id,
                   users.user_id,
                   CASE WHEN types.type = '{TEAMLESS}' THEN NULL ELSE users.team_id END,
                   CASE WHEN types.type = 'prompt.completed'
                        THEN json_object('prompt_tokens', drawn.within_us % 2000,
                                         'completion_tokens', drawn.within_us % 500,
                                         'cost_usd', (drawn.within_us % 1000) / 100000.0)
                        ELSE '{{"source": "web"}}' END
            FROM drawn  -- CROSS JOIN: drawn stays the outer loop, each row drawn once
            CROSS JOIN bench_users AS users ON users.u = drawn.u
            CROSS JOIN bench_types AS types ON types.slot = drawn.slot
            """  # noqa: S608 - constants and placeholders only
        )
        changed = shape.now.strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute(
            "INSERT INTO analytics_team_members (team_id, user_id, active, changed_at)"
            " SELECT team_id, user_id, u % 50 <> 1, ? FROM bench_users"
            " UNION ALL SELECT second_team_id, user_id, 1, ? FROM bench_users"
            " WHERE u % 20 = 0 AND second_team_id <> team_id",
            (changed, changed),
        )
        conn.execute("COMMIT")
        line("fill (one connection)", f"{time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        for _, sql in indexes:
            conn.execute(sql)
        line("indexes rebuilt", f"{time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        conn.execute("ANALYZE")
        line("ANALYZE", f"{time.perf_counter() - started:.1f} s")
        line("database file", f"{Path(sqlite_path(url)).stat().st_size / 2**20:,.0f} MB")
    finally:
        conn.close()


# The teams asked about


async def pick_teams(db: Database) -> list[Team]:
    async with db.read() as session:
        sizes = (
            await session.execute(
                select(TeamMember.team_id, func.count())
                .where(TeamMember.active)
                .group_by(TeamMember.team_id)
                .order_by(func.count().desc(), TeamMember.team_id)
            )
        ).all()
        picked = [("largest", *sizes[0]), ("typical", *sizes[len(sizes) // 2])]
        teams = []
        for label, team_id, members in picked:
            events = await session.scalar(
                select(func.count()).where(AnalyticsEvent.team_id == team_id)
            )
            teams.append(Team(label, team_id, int(members), int(events or 0)))
    return teams


# Hand-written SQL: the baseline


PG_COUNTS = """
    SELECT type, sum(n)::bigint FROM (
        SELECT type, count(*) AS n FROM analytics_events WHERE team_id = $1 GROUP BY type
        UNION ALL
        SELECT e.type, count(*) FROM analytics_events AS e
        WHERE e.team_id IS NULL AND e.user_id IN (
            SELECT user_id FROM analytics_team_members WHERE team_id = $1 AND active)
        GROUP BY e.type
    ) AS halves
    GROUP BY type ORDER BY type
"""


def funnel_sql(steps: int, *, sqlite: bool) -> str:
    """Steps as $2..$n+1 (PostgreSQL) or ?2.. (SQLite); the window as the last parameter.

    The facade's algorithm (one window function per step), by hand: on PostgreSQL
    rows compare `time` itself, on SQLite integer microseconds.
    """
    mark = (lambda n: f"?{n}") if sqlite else (lambda n: f"${n}")
    step = [mark(2 + index) for index in range(steps)]
    window = mark(2 + steps) if sqlite else f"{mark(2 + steps)}::interval"
    team = mark(1)
    moment = "moment" if sqlite else "time"
    extra = (
        ", CAST(strftime('%s', time) AS INTEGER) * 1000000"
        " + CAST(substr(time, 21, 6) AS INTEGER) AS moment"
        if sqlite
        else ""
    )
    carried = "user_id, type, time, id" + (", moment" if sqlite else "")
    over = (
        "OVER (PARTITION BY user_id ORDER BY time, id"
        " ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
    )
    query = f"""
        SELECT {carried},
               max(CASE WHEN type = {step[0]} THEN {moment} END) {over} AS latest,
               CASE WHEN type = {step[0]} THEN 1 ELSE 0 END AS level
        FROM (
            SELECT user_id, type, time, id{extra} FROM analytics_events
            WHERE team_id = {team} AND type IN ({", ".join(step)})
            UNION ALL
            SELECT user_id, type, time, id{extra} FROM analytics_events
            WHERE team_id IS NULL AND type IN ({", ".join(step)}) AND user_id IN (
                SELECT user_id FROM analytics_team_members WHERE team_id = {team} AND active)
        ) AS found
    """  # noqa: S608 - constants and placeholders only
    for index in range(1, steps):
        extends = f"type = {step[index]} AND {moment} - latest <= {window}"
        latest = (
            f", max(CASE WHEN {extends} THEN latest END) {over} AS latest"
            if index < steps - 1
            else ""
        )
        query = f"""
            SELECT {carried}{latest},
                   CASE WHEN {extends} THEN {index + 1} ELSE level END AS level
            FROM ({query}) AS step_{index}
        """  # noqa: S608 - constants and placeholders only
    return f"""
        SELECT level, count(*) FROM (
            SELECT max(level) AS level FROM ({query}) AS levels GROUP BY user_id
        ) AS per_user
        GROUP BY level
    """  # noqa: S608 - constants and placeholders only


def funnel_steps(steps: Sequence[str], furthest: dict[int, int]) -> list[FunnelStep]:
    reached = [sum(n for level, n in furthest.items() if level > k) for k in range(len(steps))]
    first = reached[0]
    return [
        FunnelStep(name, users, users / first if first else 0.0)
        for name, users in zip(steps, reached, strict=True)
    ]


PG_ACTIVE = """
    SELECT to_char(date_trunc('day', timezone('UTC', time)), 'YYYY-MM-DD'),
           count(DISTINCT user_id)
    FROM (
        SELECT time, user_id FROM analytics_events
        WHERE team_id = $1 AND time >= $2 AND time < $3 AND user_id IS NOT NULL
        UNION ALL
        SELECT time, user_id FROM analytics_events
        WHERE team_id IS NULL AND time >= $2 AND time < $3 AND user_id IN (
            SELECT user_id FROM analytics_team_members WHERE team_id = $1 AND active)
    ) AS seen
    GROUP BY 1
"""

PG_USAGE = """
    SELECT to_char(date_trunc('day', timezone('UTC', time)), 'YYYY-MM-DD'), count(*),
           coalesce(sum((properties ->> 'prompt_tokens')::int), 0),
           coalesce(sum((properties ->> 'completion_tokens')::int), 0),
           coalesce(sum((properties ->> 'cost_usd')::float8), 0)
    FROM analytics_events
    WHERE team_id = $1 AND type = 'prompt.completed' AND time >= $2 AND time < $3
    GROUP BY 1
"""

SQLITE_COUNTS = PG_COUNTS.replace("$1", "?1").replace("::bigint", "")
SQLITE_ACTIVE = """
    SELECT strftime('%Y-%m-%d', time), count(DISTINCT user_id)
    FROM (
        SELECT time, user_id FROM analytics_events
        WHERE team_id = ?1 AND time >= ?2 AND time < ?3 AND user_id IS NOT NULL
        UNION ALL
        SELECT time, user_id FROM analytics_events
        WHERE team_id IS NULL AND time >= ?2 AND time < ?3 AND user_id IN (
            SELECT user_id FROM analytics_team_members WHERE team_id = ?1 AND active)
    ) AS seen
    GROUP BY 1
"""
SQLITE_USAGE = """
    SELECT strftime('%Y-%m-%d', time), count(*),
           coalesce(sum(CAST(json_extract(properties, '$.prompt_tokens') AS INTEGER)), 0),
           coalesce(sum(CAST(json_extract(properties, '$.completion_tokens') AS INTEGER)), 0),
           coalesce(sum(CAST(json_extract(properties, '$.cost_usd') AS REAL)), 0.0)
    FROM analytics_events
    WHERE team_id = ?1 AND type = 'prompt.completed' AND time >= ?2 AND time < ?3
    GROUP BY 1
"""


class Raw:
    """The hand-written queries over the bare driver of the backend."""

    def __init__(self, backend: Backend, url: str) -> None:
        self.backend = backend
        self.url = url
        self._pg: asyncpg.Connection | None = None
        self._sqlite: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self.backend == "real":
            self._pg = await pg_connect(self.url)
        else:
            self._sqlite = sqlite3.connect(sqlite_path(self.url))

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()

    async def rows(self, pg_sql: str, sqlite_sql: str, *args: Any) -> list[tuple[Any, ...]]:
        if self._pg is not None:
            return [tuple(row) for row in await self._pg.fetch(pg_sql, *args)]
        assert self._sqlite is not None
        values = [
            value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            if isinstance(value, datetime)
            else value
            for value in args
        ]
        return self._sqlite.execute(sqlite_sql, values).fetchall()

    async def event_counts(self, team: str) -> list[EventCount]:
        rows = await self.rows(PG_COUNTS, SQLITE_COUNTS, team)
        return [EventCount(name, int(n)) for name, n in rows]

    async def funnel(self, team: str, steps: Sequence[str], window_s: int) -> list[FunnelStep]:
        window: Any = window_s * 1_000_000 if self._sqlite else timedelta(seconds=window_s)
        rows = await self.rows(
            funnel_sql(len(steps), sqlite=False),
            funnel_sql(len(steps), sqlite=True),
            team,
            *steps,
            window,
        )
        return funnel_steps(steps, {int(level): int(n) for level, n in rows})

    async def active_users(self, team: str, start: datetime, end: datetime) -> dict[str, int]:
        rows = await self.rows(PG_ACTIVE, SQLITE_ACTIVE, team, start, end)
        return {day: int(users) for day, users in rows}

    async def usage(self, team: str, start: datetime, end: datetime) -> dict[str, tuple[Any, ...]]:
        rows = await self.rows(PG_USAGE, SQLITE_USAGE, team, start, end)
        return {day: (int(n), int(p), int(c), round(float(cost), 6)) for day, n, p, c, cost in rows}


# The previous queries (before issue 7): one OR for the team's scope, the funnel's
# step rows walked in Python.


def previous_scope(team: str) -> Any:
    members = select(TeamMember.user_id).where(TeamMember.team_id == team, TeamMember.active)
    return or_(
        AnalyticsEvent.team_id == team,
        and_(AnalyticsEvent.team_id.is_(None), AnalyticsEvent.user_id.in_(members)),
    )


async def previous_event_counts(db: Database, team: str) -> list[EventCount]:
    query = (
        select(AnalyticsEvent.type, func.count())
        .where(previous_scope(team))
        .group_by(AnalyticsEvent.type)
        .order_by(AnalyticsEvent.type)
    )
    async with db.read() as session:
        return [EventCount(name, n) for name, n in (await session.execute(query)).all()]


async def previous_funnel(
    db: Database, team: str, steps: Sequence[str], window_s: int
) -> list[FunnelStep]:
    query = (
        select(AnalyticsEvent.user_id, AnalyticsEvent.type, AnalyticsEvent.time)
        .where(previous_scope(team), AnalyticsEvent.user_id.is_not(None))
        .where(AnalyticsEvent.type.in_(set(steps)))
        .order_by(AnalyticsEvent.user_id, AnalyticsEvent.time, AnalyticsEvent.id)
    )
    per_user: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    async with db.read() as session:
        for user_id, kind, moment in await session.execute(query):
            per_user[user_id or ""].append((kind, moment))
    furthest: dict[int, int] = defaultdict(int)
    for events in per_user.values():
        furthest[_furthest_step(events, steps, timedelta(seconds=window_s))] += 1
    return funnel_steps(steps, furthest)


# Measuring


def report(label: str, seconds: list[float]) -> tuple[float, float]:
    p50, p99 = percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000
    line(label, f"p50 {p50:8.2f} ms   p99 {p99:8.2f} ms")
    return p50, p99


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


async def compare(
    title: str,
    calls: int,
    facade: Callable[[], Awaitable[Any]],
    raw: Callable[[], Awaitable[Any]],
    cached: Callable[[], Awaitable[Any]],
) -> None:
    print(f"  -- {title}")
    for _ in range(2):  # warm-up: prepared statements, pool, caches
        answer, expected = await facade(), await raw()
    assert answer == expected, f"{title}: the facade and the SQL disagree"
    ours: list[float] = []
    theirs: list[float] = []
    for index in range(calls):
        # In turns, each going first half the time: the machine's noise falls on both.
        pair = (facade, raw) if index % 2 == 0 else (raw, facade)
        first, _ = await timed(pair[0])
        second, _ = await timed(pair[1])
        ours.append(first if index % 2 == 0 else second)
        theirs.append(second if index % 2 == 0 else first)
    facade_p = report("facade (cache off)", ours)
    raw_p = report("hand-written SQL, raw driver", theirs)
    line(
        "ratio facade / SQL", f"p50 {facade_p[0] / raw_p[0]:.2f}   p99 {facade_p[1] / raw_p[1]:.2f}"
    )
    await cached()
    warm = [(await timed(cached))[0] for _ in range(calls)]
    report("facade, cached in Redis", warm)


def as_days(found: Sequence[ActiveUsers | Usage]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in found:
        day = item.start.date().isoformat()
        if isinstance(item, ActiveUsers):
            if item.users:
                out[day] = item.users
        elif item.prompts:
            out[day] = (item.prompts, item.prompt_tokens, item.completion_tokens, item.cost_usd)
    return out


async def explain(db: Database, url: str, ask: Callable[[], Awaitable[Any]]) -> None:
    """EXPLAIN ANALYZE of each statement the facade runs for `ask`."""
    statements: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statements.append((args[2], args[3]))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        await ask()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    conn = await pg_connect(url)
    try:
        for statement, parameters in statements:
            plan = await conn.fetch(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, *(parameters or ())
            )
            for row in plan:
                print("      " + row[0])
    finally:
        await conn.close()


async def run(backend: Backend, count: int, calls: int, show_plans: bool, ingest: int) -> None:
    quiet_logs()
    shape = shape_for(count)
    with tempfile.TemporaryDirectory() as directory:
        async with stores(backend, Path(directory)) as store:
            heading(
                f"analytics questions over {count:,} events ({shape.users:,} users, "
                f"{TEAMS:,} teams), {backend} backend"
            )
            started = time.perf_counter()
            if backend == "real":
                await pg_fill(store.database_url, shape)
            else:
                await asyncio.to_thread(sqlite_fill, store.database_url, shape)
            line("stored in", f"{time.perf_counter() - started:.1f} s")

            db = Database(store.database_url)
            redis = build_redis(store.redis_url)
            raw = Raw(backend, store.database_url)
            await raw.open()
            try:
                uncached = AnalyticsService(db, None, AnalyticsLimits(cache_ttl_s=0))
                cache = AnalyticsService(db, redis, redis_url=store.redis_url)
                end = shape.now.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                start = end - timedelta(days=30)
                for team in await pick_teams(db):
                    await ask_team(team, uncached, cache, raw, db, calls, start, end)
                if show_plans and backend == "real":
                    largest = (await pick_teams(db))[0]
                    await show_explains(db, store.database_url, largest, uncached, start, end)
                if ingest and backend == "real":
                    await before(db, store.database_url, shape, ingest, min(calls, 5))
            finally:
                await raw.close()
                await redis.aclose()
                await db.dispose()


async def ask_team(
    team: Team,
    uncached: AnalyticsService,
    cache: AnalyticsService,
    raw: Raw,
    db: Database,
    calls: int,
    start: datetime,
    end: datetime,
) -> None:
    who = Principal(user_id="bench", session_id="bench", teams={team.team_id: "viewer"})
    heading(f"{team.label} team: {team.members:,} members, {team.events:,} team events")
    t = team.team_id
    await compare(
        "eventCounts (every type, all time)",
        calls,
        lambda: uncached.event_counts(who),
        lambda: raw.event_counts(t),
        lambda: cache.event_counts(who),
    )
    await compare(
        f"funnel ({len(FUNNEL)} steps, 1-day window, all time)",
        calls,
        lambda: uncached.funnel(who, FUNNEL, FUNNEL_WINDOW_S),
        lambda: raw.funnel(t, FUNNEL, FUNNEL_WINDOW_S),
        lambda: cache.funnel(who, FUNNEL, FUNNEL_WINDOW_S),
    )

    async def active_users(service: AnalyticsService) -> dict[str, Any]:
        return as_days(await service.active_users(who, Period.DAY, start, end))

    async def usage(service: AnalyticsService) -> dict[str, Any]:
        return as_days(await service.usage(who, Period.DAY, start, end))

    await compare(
        "activeUsers (per day, 30 days)",
        calls,
        lambda: active_users(uncached),
        lambda: raw.active_users(t, start, end),
        lambda: active_users(cache),
    )
    await compare(
        "usage (per day, 30 days)",
        calls,
        lambda: usage(uncached),
        lambda: raw.usage(t, start, end),
        lambda: usage(cache),
    )
    # The same funnel by the previous implementation (rows walked in Python by
    # `_furthest_step`, the reference semantics): the SQL must agree at scale too.
    answer = await uncached.funnel(who, FUNNEL, FUNNEL_WINDOW_S)
    assert answer == await previous_funnel(db, t, FUNNEL, FUNNEL_WINDOW_S), "funnels disagree"
    line("funnel (= the Python walk's)", ", ".join(f"{s.name} {s.users:,}" for s in answer))


async def show_explains(
    db: Database, url: str, team: Team, service: AnalyticsService, start: datetime, end: datetime
) -> None:
    who = Principal(user_id="bench", session_id="bench", teams={team.team_id: "viewer"})
    heading(f"plans of the facade's queries, {team.label} team")
    questions: dict[str, Callable[[], Awaitable[Any]]] = {
        "eventCounts": lambda: service.event_counts(who),
        "funnel": lambda: service.funnel(who, FUNNEL, FUNNEL_WINDOW_S),
        "activeUsers": lambda: service.active_users(who, Period.DAY, start, end),
        "usage": lambda: service.usage(who, Period.DAY, start, end),
    }
    for name, ask in questions.items():
        print(f"  -- {name}")
        await explain(db, url, ask)


# Before: migration 0700's indexes, and what they cost ingestion


async def before(db: Database, url: str, shape: Shape, count: int, calls: int) -> None:
    """Insert rates with the migrated indexes, then with migration 0700's four instead,
    and the previous queries' latency on those."""
    heading(f"before: migration 0700's indexes; ingestion of {count:,} new events")
    conn = await pg_connect(url)
    try:
        teams = [
            r[0] for r in await conn.fetch("SELECT DISTINCT team_id FROM analytics_team_members")
        ]
        users = [r[0] for r in await conn.fetch("SELECT user_id FROM analytics_team_members")]
        current = [
            r[0]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'analytics_events'"
                " AND indexname <> 'pk_analytics_events' ORDER BY indexname"
            )
        ]
        rng = random.Random(count)
        rate = await insert_rate(conn, shape, count, teams, users, rng)
        line("indexes now", ", ".join(current))
        line("insert, pk + the indexes now", f"{rate:,.0f} events/s")
        started = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        for name in current:
            await conn.execute(f'DROP INDEX "{name}"')
        for name, columns in PREVIOUS_INDEXES.items():
            await conn.execute(f"CREATE INDEX {name} ON analytics_events {columns}")
        await conn.execute("VACUUM ANALYZE analytics_events")
        line("(0700's indexes built instead)", f"{time.perf_counter() - started:.1f} s")
        previous = await insert_rate(conn, shape, count, teams, users, rng)
        line("insert, pk + 0700's 4 indexes", f"{previous:,.0f} events/s")
        line("ratio now / before", f"{rate / previous:.2f}")
    finally:
        await conn.close()
    for team in await pick_teams(db):
        print(f"  -- the previous queries, {team.label} team ({calls} calls)")
        t = team.team_id
        questions: dict[str, Callable[[], Awaitable[Any]]] = {
            "eventCounts": lambda t=t: previous_event_counts(db, t),  # type: ignore[misc]
            "funnel": lambda t=t: previous_funnel(db, t, FUNNEL, FUNNEL_WINDOW_S),  # type: ignore[misc]
        }
        for name, ask in questions.items():
            await ask()  # warm-up
            report(f"previous {name}", [(await timed(ask))[0] for _ in range(calls)])


async def insert_rate(
    conn: asyncpg.Connection,
    shape: Shape,
    count: int,
    teams: list[str],
    users: list[str],
    rng: random.Random,
) -> float:
    """A multi-row INSERT ... ON CONFLICT DO NOTHING per 1,000 events, as the consumer
    does, of events happening now (times after the stored ones)."""
    batches = []
    moment = shape.now + timedelta(days=1)
    for _ in range(0, count, 1_000):
        rows = []
        for _ in range(1_000):
            kind = rng.choice(SLOTS)
            team = None if kind == TEAMLESS else rng.choice(teams)
            moment += timedelta(microseconds=rng.randint(1, 100))
            rows.append((str(uuid.uuid4()), kind, moment, rng.choice(users), team))
        batches.append(rows)
    statement = """
        INSERT INTO analytics_events (id, type, time, source, subject, user_id, team_id,
                                      properties)
        SELECT id, type, time, 'haunted/app', user_id, user_id, team_id, '{}'::json
        FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[])
             AS batch(id, type, time, user_id, team_id)
        ON CONFLICT (id) DO NOTHING
    """
    started = time.perf_counter()
    for rows in batches:
        columns = list(zip(*rows, strict=True))
        async with conn.transaction():
            await conn.execute(statement, *columns)
    return count / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics_queries")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=50, help="calls per question and team")
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="real")
    parser.add_argument("--explain", action="store_true", help="the facade's plans (real)")
    parser.add_argument(
        "--ingest", type=int, default=0, help="events to insert per index set (real; 0: skip)"
    )
    args = parser.parse_args(argv)
    if args.events < 1_000 or args.calls < 2:
        parser.error("--events takes at least 1,000 and --calls at least 2")
    for backend in BACKENDS if args.backend == "both" else (args.backend,):
        asyncio.run(run(backend, args.events, args.calls, args.explain, args.ingest))


if __name__ == "__main__":
    main()
