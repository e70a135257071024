"""The analytics facade: tracking, and product questions answered from analytics' own store.

Answers are cached in Redis for a few minutes per (question, team, arguments):
they go stale by time only. Redis down or cold means computing, never failing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar, TypeVarTuple

import structlog
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import Subquery

from events.db import Database
from events.dialect import SqlDialect
from events.metrics import CACHE_REQUESTS
from events.outbox import add_event
from schemas import CATALOG, SEALED_FIELDS, AnalyticsTracked, PromptCompleted, PromptFailed
from services.analytics.models import AnalyticsEvent, TeamMember
from services.errors import BadUserInput, RateLimited, Unauthenticated
from services.principal import Caller, ExportSubject, Principal, require_self, requires

log = structlog.get_logger(__name__)

MAX_NAMES = 100
MAX_STEPS = 10
MAX_BUCKETS = 400
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,99}")
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class Period(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@dataclass(frozen=True, slots=True)
class EventCount:
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class ActiveUsers:
    start: datetime
    users: int


@dataclass(frozen=True, slots=True)
class FunnelStep:
    name: str
    users: int
    conversion: float  # of the first step's users


@dataclass(frozen=True, slots=True)
class Usage:
    start: datetime
    prompts: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True, slots=True)
class PastEvent:
    """A product event that happened before it is recorded (an import, demo data)."""

    id: str  # its event id: importing it again adds nothing (one row per id)
    name: str
    user_id: str
    team_id: str | None
    time: datetime  # when it happened (timezone-aware)
    properties: dict[str, Any]


class AnalyticsLimits(BaseModel):
    """Analytics' settings (HAUNTED_ANALYTICS_*): the defaults are written here only."""

    model_config = ConfigDict(frozen=True)

    cache_ttl_s: int = Field(
        300,
        ge=0,
        description=(
            "How long `eventCounts`, `activeUsers`, `funnel` and `usage` answers stay cached in "
            "Redis."
        ),
    )
    track_rate_limit: str = Field(
        "120/minute",
        description="`track` calls per user (`limits` notation), counted in Redis by all gateways.",
    )
    track_max_bytes: int = Field(8_192, ge=2, description="Size of `track`'s `properties` as JSON.")
    track_max_depth: int = Field(5, ge=1, description="Nesting depth of `track`'s `properties`.")


def _limits_storage(redis_url: str) -> tuple[str, dict[str, str]]:
    """The `limits` storage for the app's Redis URL (memory:// stays in-process)."""
    if redis_url == "memory://":
        return "async+memory://", {}
    return "async+" + redis_url, {"implementation": "redispy"}


def bucket_start(moment: datetime, period: Period) -> datetime:
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if period is Period.MONTH:
        return day.replace(day=1)
    return day


def next_bucket(start: datetime, period: Period) -> datetime:
    if period is Period.DAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(weeks=1)
    return (start + timedelta(days=32)).replace(day=1)


def _nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and lists nest more than `limit` levels (the top object is one).
    Level by level, no recursion, and it stops one level past the limit: no input can
    make it recurse or run longer than its size."""
    level: list[Any] = [value]
    for _ in range(limit):
        containers = [node for node in level if isinstance(node, dict | list)]
        if not containers:
            return False
        level = [
            child
            for node in containers
            for child in (node.values() if isinstance(node, dict) else node)
        ]
    return any(isinstance(node, dict | list) for node in level)


EXPORT_PAGE = 500  # rows read at once while an export streams
_LLM_OUTCOMES = {PromptCompleted.topic: "completed", PromptFailed.topic: "failed"}
_LLM_SOURCE = f"haunted/{PromptCompleted.source}"  # as the envelope names it


@dataclass(frozen=True, slots=True)
class TrackedEventExport:
    """One event about the user as analytics stored it; sealed fields (ciphertexts of
    addresses and mailed codes) left out."""

    id: str
    type: str
    time: datetime
    source: str
    team_id: str | None
    data: dict[str, Any]  # the event's data (a tracked event's own properties inside)


@dataclass(frozen=True, slots=True)
class LlmCallExport:
    """One of the user's LLM calls, from the LLM gateway's events analytics keeps."""

    request_id: str | None
    time: datetime
    team_id: str | None
    outcome: str  # completed | failed
    prompt_path: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None
    cached: bool | None
    error_code: str | None


def _unsealed(properties: Any) -> dict[str, Any]:
    if not isinstance(properties, dict):
        return {}
    return {key: value for key, value in properties.items() if key not in SEALED_FIELDS}


def _llm_call(row: AnalyticsEvent) -> LlmCallExport:
    data = _unsealed(row.properties)
    return LlmCallExport(
        request_id=data.get("request_id"),
        time=row.time,
        team_id=row.team_id,
        outcome=_LLM_OUTCOMES[row.type],
        prompt_path=data.get("prompt_path"),
        model=data.get("model"),
        prompt_tokens=data.get("prompt_tokens"),
        completion_tokens=data.get("completion_tokens"),
        cost_usd=data.get("cost_usd"),
        cached=data.get("cached"),
        error_code=data.get("error_code"),
    )


class AnalyticsService:
    def __init__(
        self,
        db: Database,
        redis: Redis | None = None,
        limits: AnalyticsLimits | None = None,
        *,
        redis_url: str = "memory://",
    ) -> None:
        self._db = db
        self._redis = redis
        self._limits = limits or AnalyticsLimits()
        uri, options = _limits_storage(redis_url)
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri, **options))
        self._track_rate = parse(self._limits.track_rate_limit)

    # Tracking

    async def track(
        self, principal: Principal, name: str, properties: dict[str, Any] | None = None
    ) -> None:
        """Publishes analytics.tracked for the caller, in the caller's default team."""
        if not isinstance(principal, Principal):
            raise Unauthenticated("authentication required")
        if not NAME.fullmatch(name) or name in CATALOG:
            raise BadUserInput(
                "name must be 1-100 letters, digits, '_', '.', ':' or '-', start with a "
                "letter, and not be a domain event type",
                field="name",
            )
        properties = {} if properties is None else properties
        if not isinstance(properties, dict):
            raise BadUserInput("properties must be a JSON object", field="properties")
        # The rate limit first: what follows costs work in proportion to the input.
        await self._hit_rate_limit(principal.user_id)
        # The depth before anything that recurses over the input (json.dumps does).
        if _nests_deeper_than(properties, self._limits.track_max_depth):
            raise BadUserInput(
                f"properties nest at most {self._limits.track_max_depth} levels",
                field="properties",
            )
        size = len(json.dumps(properties, separators=(",", ":")).encode())
        if size > self._limits.track_max_bytes:
            raise BadUserInput(
                f"properties take at most {self._limits.track_max_bytes} bytes as JSON",
                field="properties",
            )
        event = AnalyticsTracked(
            name=name,
            user_id=principal.user_id,
            team_id=principal.default_team_id,
            properties=properties,
        )
        async with self._db.transaction() as session:
            add_event(session, event)

    async def import_events(self, events: Sequence[PastEvent]) -> None:
        """Records events that happened earlier, each published as analytics.tracked at
        its own time and with its own id, in one transaction. For the composition
        root's tools (`haunted seed`), not for callers over the network: no caller,
        no rate limit. The names follow `track`'s rule; BadUserInput writes nothing."""
        for each in events:
            if not NAME.fullmatch(each.name) or each.name in CATALOG:
                raise BadUserInput(f"{each.name!r} cannot be a tracked name", field="name")
            if each.time.tzinfo is None:
                raise BadUserInput("an imported event's time needs a time zone", field="time")
        async with self._db.transaction() as session:
            for each in events:
                event = AnalyticsTracked(
                    name=each.name,
                    user_id=each.user_id,
                    team_id=each.team_id,
                    properties=each.properties,
                )
                add_event(session, event, event_id=each.id, time=each.time)

    async def _hit_rate_limit(self, user_id: str) -> None:
        if not await self._limiter.hit(self._track_rate, "analytics", "track", user_id):
            stats = await self._limiter.get_window_stats(
                self._track_rate, "analytics", "track", user_id
            )
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(
                f"too many tracked events; retry in {retry_after} s", retryAfter=retry_after
            )

    # The user's data export

    async def export_events(
        self, caller: Caller, of: ExportSubject
    ) -> AsyncIterator[TrackedEventExport]:
        """Every stored event about the user (theirs by `user_id`), oldest first, streamed."""
        require_self(caller, of.user_id)
        async for row in self._rows_of(of.user_id):
            yield TrackedEventExport(
                row.id, row.type, row.time, row.source, row.team_id, _unsealed(row.properties)
            )

    async def export_llm_usage(
        self, caller: Caller, of: ExportSubject
    ) -> AsyncIterator[LlmCallExport]:
        """The user's LLM calls (the gateway's prompt.* events), oldest first, streamed."""
        require_self(caller, of.user_id)
        async for row in self._rows_of(
            of.user_id, sources=(_LLM_SOURCE,), types=tuple(_LLM_OUTCOMES)
        ):
            yield _llm_call(row)

    async def _rows_of(
        self,
        user_id: str,
        *,
        sources: tuple[str, ...] = (),
        types: tuple[str, ...] = (),
    ) -> AsyncIterator[AnalyticsEvent]:
        """The user's stored events in (time, id) order, a page per read."""
        after: tuple[datetime, str] | None = None
        while True:
            query = select(AnalyticsEvent).where(AnalyticsEvent.user_id == user_id)
            if sources:
                query = query.where(AnalyticsEvent.source.in_(sources))
            if types:
                query = query.where(AnalyticsEvent.type.in_(types))
            if after is not None:
                query = query.where(
                    or_(
                        AnalyticsEvent.time > after[0],
                        and_(AnalyticsEvent.time == after[0], AnalyticsEvent.id > after[1]),
                    )
                )
            query = query.order_by(AnalyticsEvent.time, AnalyticsEvent.id).limit(EXPORT_PAGE)
            async with self._db.read() as session:
                rows = (await session.scalars(query)).all()
            for row in rows:
                yield row
            if len(rows) < EXPORT_PAGE:
                return
            after = (rows[-1].time, rows[-1].id)

    # Questions

    @requires("analytics:read")
    async def event_counts(
        self,
        principal: Principal,
        names: Sequence[str] | None = None,
        since: datetime | None = None,
        *,
        team_id: str | None = None,
    ) -> list[EventCount]:
        """How often each event type occurred in the caller's team."""
        team = team_id or ""
        if names is not None and len(names) > MAX_NAMES:
            raise BadUserInput(f"names takes at most {MAX_NAMES} entries", field="names")
        args = {"names": sorted(names) if names is not None else None, "since": since}

        async def compute() -> list[EventCount]:
            counted = select(AnalyticsEvent.type.label("name"), func.count().label("n"))
            if names is not None:
                counted = counted.where(AnalyticsEvent.type.in_(list(names)))
            if since is not None:
                counted = counted.where(AnalyticsEvent.time >= since)
            # Counted in each half (an index-only scan each), then added up.
            halves = _in_team(team, counted.group_by(AnalyticsEvent.type)).subquery("counted")
            query = (
                select(halves.c.name, func.sum(halves.c.n))
                .group_by(halves.c.name)
                .order_by(halves.c.name)
            )
            async with self._db.read() as session:
                rows = (await session.execute(query)).all()
            return [EventCount(name, int(count)) for name, count in rows]

        return await self._cached("event_counts", team, args, compute, EventCount)

    @requires("analytics:read")
    async def active_users(
        self,
        principal: Principal,
        period: Period,
        start: datetime,
        end: datetime,
        *,
        team_id: str | None = None,
    ) -> list[ActiveUsers]:
        """Distinct users with any event per period in [start, end), empty periods as 0."""
        team = team_id or ""
        buckets = self._buckets(period, start, end)

        async def compute() -> list[ActiveUsers]:
            seen = (
                select(
                    self._bucket_expression(period).label("bucket"),
                    AnalyticsEvent.user_id.label("user_id"),
                )
                .where(AnalyticsEvent.user_id.is_not(None))
                .where(AnalyticsEvent.time >= start, AnalyticsEvent.time < end)
            )
            halves = _in_team(team, seen).subquery("seen")
            grouped = select(halves.c.bucket, func.count(func.distinct(halves.c.user_id))).group_by(
                halves.c.bucket
            )
            async with self._db.read() as session:
                rows = (await session.execute(grouped)).all()
            counts = {_bucket_key(value): users for value, users in rows}
            return [ActiveUsers(b, counts.get(b.date().isoformat(), 0)) for b in buckets]

        args = {"period": period.value, "from": start, "to": end}
        return await self._cached("active_users", team, args, compute, ActiveUsers)

    @requires("analytics:read")
    async def funnel(
        self,
        principal: Principal,
        steps: Sequence[str],
        window_s: int = 7 * 24 * 3600,
        since: datetime | None = None,
        *,
        team_id: str | None = None,
    ) -> list[FunnelStep]:
        """Users who did the steps in order, each within `window_s` of their first step."""
        team = team_id or ""
        if not 1 <= len(steps) <= MAX_STEPS:
            raise BadUserInput(f"steps takes 1 to {MAX_STEPS} event names", field="steps")
        if window_s < 1:
            raise BadUserInput("window must be at least 1 second", field="window")
        args = {"steps": list(steps), "window": window_s, "since": since}

        async def compute() -> list[FunnelStep]:
            query = self._funnel_levels(team, steps, window_s, since)
            async with self._db.read() as session:
                furthest = {int(level): int(users) for level, users in await session.execute(query)}
            # Users whose furthest step is k reached every step up to k.
            reached = [
                sum(users for level, users in furthest.items() if level > index)
                for index in range(len(steps))
            ]
            first = reached[0]
            return [
                FunnelStep(name, users, users / first if first else 0.0)
                for name, users in zip(steps, reached, strict=True)
            ]

        return await self._cached("funnel", team, args, compute, FunnelStep)

    @requires("analytics:read")
    async def usage(
        self,
        principal: Principal,
        period: Period = Period.DAY,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        team_id: str | None = None,
    ) -> list[Usage]:
        """LLM prompts, tokens and cost per period from prompt.completed (default: 30 days)."""
        team = team_id or ""
        end = end or next_bucket(bucket_start(datetime.now(UTC), period), period)
        start = start or end - timedelta(days=30)
        buckets = self._buckets(period, start, end)

        async def compute() -> list[Usage]:
            props = AnalyticsEvent.properties
            query = (
                select(
                    self._bucket_expression(period).label("bucket"),
                    func.count(),
                    func.coalesce(func.sum(props["prompt_tokens"].as_integer()), 0),
                    func.coalesce(func.sum(props["completion_tokens"].as_integer()), 0),
                    func.coalesce(func.sum(props["cost_usd"].as_float()), 0.0),
                )
                .where(AnalyticsEvent.team_id == team, AnalyticsEvent.type == "prompt.completed")
                .where(AnalyticsEvent.time >= start, AnalyticsEvent.time < end)
                .group_by(literal_column("bucket"))
            )
            async with self._db.read() as session:
                rows = (await session.execute(query)).all()
            found = {_bucket_key(b): (n, p, c, cost) for b, n, p, c, cost in rows}
            out = []
            for b in buckets:
                n, p, c, cost = found.get(b.date().isoformat(), (0, 0, 0, 0.0))
                out.append(Usage(b, int(n), int(p), int(c), round(float(cost), 6)))
            return out

        args = {"period": period.value, "from": start, "to": end}
        return await self._cached("usage", team, args, compute, Usage)

    # Helpers

    def _buckets(self, period: Period, start: datetime, end: datetime) -> list[datetime]:
        if end <= start:
            raise BadUserInput("to must be after from", field="to")
        try:
            buckets = [bucket_start(start, period)]
            while (following := next_bucket(buckets[-1], period)) < end:
                buckets.append(following)
                if len(buckets) > MAX_BUCKETS:
                    raise BadUserInput(f"at most {MAX_BUCKETS} periods per question", field="from")
        except OverflowError:  # a period past year 9999
            raise BadUserInput("dates must be before the year 9999", field="to") from None
        return buckets

    def _funnel_levels(
        self, team: str, steps: Sequence[str], window_s: int, since: datetime | None
    ) -> Select[int, int]:
        """(furthest step, users) of the team's users, computed in the database.

        The semantics are `_furthest_step`'s: steps in order, each within the window
        of the user's first step, the best first step counts. The team's step events
        in (user, time, id) order, one pass per step: `latest` is, on each row, the
        latest time at which a chain that reached step k on an earlier row began (a
        later start leaves more room for the steps after). A row of step k+1 extends
        that chain if it began within the window, and the row's `level` is then k+1.
        A user's furthest step is the highest level of their rows. Linear in the
        events, and one window function per step.
        """
        event = AnalyticsEvent
        columns: list[ColumnElement[Any] | InstrumentedAttribute[Any]] = [
            event.user_id,
            event.type,
            event.time,
            event.id,
        ]
        window: ColumnElement[Any]
        if self._db.dialect is SqlDialect.SQLITE:
            # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff': exact integer microseconds.
            microseconds = cast(func.strftime("%s", event.time), Integer) * 1_000_000 + cast(
                func.substr(event.time, 21, 6), Integer
            )
            columns.append(microseconds.label("moment"))
            window = literal(window_s * 1_000_000)
        else:
            window = literal(timedelta(seconds=window_s))
        rows = select(*columns).where(event.type.in_(sorted(set(steps))))
        rows = rows.where(event.user_id.is_not(None))
        if since is not None:
            rows = rows.where(event.time >= since)
        current = _in_team(team, rows).subquery("step_events")
        carried = ("user_id", "type", "time", "id", "moment")
        # A chain begins on each row of the first step.
        chain: ColumnElement[Any] = case((current.c.type == steps[0], self._moment(current)))
        level: ColumnElement[int] = case((current.c.type == steps[0], 1), else_=0)
        for index in range(1, len(steps)):
            c = current.c
            latest = func.max(chain).over(
                partition_by=c.user_id, order_by=(c.time, c.id), rows=(None, -1)
            )
            current = select(
                *(column for column in c if column.name in carried),
                latest.label("latest"),
                level.label("level"),
            ).subquery(f"step_{index}")
            c = current.c
            extends = and_(c.type == steps[index], self._moment(current) - c.latest <= window)
            chain = case((extends, c.latest))
            level = case((extends, index + 1), else_=c.level)
        per_user = (
            select(func.max(level).label("level")).group_by(current.c.user_id).subquery("per_user")
        )
        return select(per_user.c.level, func.count()).group_by(per_user.c.level)

    def _moment(self, rows: Subquery) -> ColumnElement[Any]:
        """A row's time as the funnel compares it: integer microseconds on SQLite."""
        return rows.c.moment if self._db.dialect is SqlDialect.SQLITE else rows.c.time

    def _bucket_expression(self, period: Period) -> ColumnElement[Any]:
        """The period's first day as 'YYYY-MM-DD' text (UTC), on either database."""
        column = AnalyticsEvent.time
        if self._db.dialect is SqlDialect.SQLITE:
            if period is Period.DAY:
                return func.strftime("%Y-%m-%d", column)
            if period is Period.WEEK:
                return func.date(column, "-6 days", "weekday 1")
            return func.strftime("%Y-%m-01", column)
        unit = {Period.DAY: "day", Period.WEEK: "week", Period.MONTH: "month"}[period]
        truncated = func.date_trunc(unit, func.timezone("UTC", column))
        return func.to_char(truncated, "YYYY-MM-DD")

    async def _cached(
        self,
        question: str,
        team: str,
        args: dict[str, Any],
        compute: Callable[[], Awaitable[list[T]]],
        kind: type[T],
    ) -> list[T]:
        ttl = self._limits.cache_ttl_s
        if self._redis is None or ttl <= 0:
            return await compute()
        digest = hashlib.sha256(json.dumps(args, default=str, sort_keys=True).encode()).hexdigest()
        key = f"analytics:v1:{question}:{team}:{digest[:32]}"
        try:
            hit = await self._redis.get(key)
        except (RedisError, OSError) as error:
            log.warning("analytics cache unavailable", error=repr(error))
            CACHE_REQUESTS.labels("analytics_answers", "error").inc()
            return await compute()
        if hit is not None:
            CACHE_REQUESTS.labels("analytics_answers", "hit").inc()
            return [_load(kind, item) for item in json.loads(hit)]
        CACHE_REQUESTS.labels("analytics_answers", "miss").inc()
        result = await compute()
        try:
            payload = json.dumps([asdict(item) for item in result], default=str)  # type: ignore[call-overload]
            await self._redis.set(key, payload, ex=ttl)
        except (RedisError, OSError) as error:
            log.warning("analytics cache unavailable", error=repr(error))
        return result


def _in_team(team: str, query: Select[*Ts]) -> CompoundSelect[*Ts]:
    """`query` over the team's events: those that name the team, and the team-less
    events (e.g. logins) of its current members.

    Two halves glued by UNION ALL (disjoint: team_id is the team, or NULL), not
    one OR: each half then has an index of its own, the second the partial index
    on team-less events (both partial: no event is in both, so neither database
    can mistake NULL, the largest "team", for a small one).
    """
    members = select(TeamMember.user_id).where(TeamMember.team_id == team, TeamMember.active)
    return union_all(
        query.where(AnalyticsEvent.team_id == team),
        query.where(AnalyticsEvent.team_id.is_(None), AnalyticsEvent.user_id.in_(members)),
    )


def _bucket_key(value: Any) -> str:
    return str(value)[:10]


def _furthest_step(
    events: list[tuple[str, datetime]], steps: Sequence[str], window: timedelta
) -> int:
    """How many steps in order the user reached from their best first step.

    The reference semantics of `funnel`, which computes them in SQL
    (`_funnel_levels`); the tests check that both agree. `events` are one
    user's step events in (time, id) order.
    """
    best = 0
    for index, (kind, began) in enumerate(events):
        if kind != steps[0]:
            continue
        level = 1
        for later_kind, moment in events[index + 1 :]:
            if level == len(steps) or moment - began > window:
                break
            if later_kind == steps[level]:
                level += 1
        best = max(best, level)
        if best == len(steps):
            break
    return best


def _load(kind: type[T], item: dict[str, Any]) -> T:
    values = {
        name: datetime.fromisoformat(value) if name == "start" else value
        for name, value in item.items()
    }
    return kind(**values)
