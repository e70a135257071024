"""The flags facade: is a flag on for this caller, answered in-process by the Unleash SDK.

Definitions come from a source (an Unleash server, or the flags file) and are
refreshed in the background; the last good copy is kept in Redis so a process
starts with flags while Unleash is down. The process that first stores a new
version announces each changed flag as `flag.updated`. Evaluations are counted
in memory and published folded, as `flag.evaluated`, one outbox transaction per
flush: nothing is awaited per evaluation.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from UnleashClient import UnleashClient

from events.db import Database
from events.metrics import CACHE_REQUESTS
from events.outbox import add_event
from schemas import FlagEvaluated, FlagUpdated
from services.flags.handlers import CANCELED
from services.flags.models import TeamPlan
from services.flags.unleash import (
    EMPTY,
    FileSource,
    FlagDefinitions,
    FlagsSourceError,
    build_client,
    parse_definitions,
)
from services.principal import Principal, requires

log = structlog.get_logger(__name__)

_MAX_LOGGED_UNKNOWN = 1_000  # callers choose names: keep the "logged once" set bounded
_MAX_CACHED_PLANS = 100_000


class FlagSource(Protocol):
    name: str

    async def fetch(self) -> str: ...


@dataclass(frozen=True, slots=True)
class FlagsConfig:
    app_name: str = "haunted"
    environment: str = "dev"
    refresh_interval_s: float = 15.0
    flush_interval_s: float = 5.0
    plan_cache_ttl_s: float = 30.0
    default_plan: str = "free"
    # flag -> permission, for flags whose source cannot declare one (an Unleash server)
    required_permissions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FlagVariant:
    name: str
    enabled: bool
    payload: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class FlagInfo:
    """A flag as the active source defines it, for listings."""

    name: str
    enabled: bool
    strategies: list[str]
    variants: list[str]
    required_permission: str | None
    description: str | None


@dataclass(frozen=True, slots=True)
class FlagState:
    """A flag and whether it is on for one caller in one team."""

    name: str
    description: str | None
    enabled: bool


def _strategy_text(strategy: Mapping[str, Any]) -> str:
    parameters = strategy.get("parameters") or {}
    shown = ", ".join(f"{k}={v}" for k, v in parameters.items() if k != "groupId")
    constraints = [
        f"{c.get('contextName')} {c.get('operator')} {','.join(map(str, c.get('values') or []))}"
        for c in strategy.get("constraints") or []
    ]
    text = f"{strategy.get('name')}({shown})"
    return f"{text} if {' and '.join(constraints)}" if constraints else text


def _description(feature: Mapping[str, Any]) -> str | None:
    description = feature.get("description")
    return description if isinstance(description, str) and description else None


def _text(value: object) -> str | None:
    return value.decode() if isinstance(value, bytes) else None


class FlagsService:
    """Feature flags for the caller; evaluation never leaves the process."""

    def __init__(self, db: Database, redis: Redis, source: FlagSource, config: FlagsConfig) -> None:
        self._db = db
        self._redis = redis
        self._source = source
        self._config = config
        self._redis_key = f"haunted:flags:definitions:{source.name}"
        self._definitions = EMPTY
        self._permissions: dict[str, str] = dict(config.required_permissions)
        self._client: UnleashClient = build_client(EMPTY, config.app_name, config.environment)
        self._counts: Counter[tuple[str, bool, str | None]] = Counter()
        self._unknown_logged: set[str] = set()
        self._plans: dict[str, tuple[str, float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        if isinstance(source, FileSource):
            # A bad flags file stops the process here, before anything starts.
            self._install(parse_definitions(source.read(), source.name))

    @property
    def source_name(self) -> str:
        return self._source.name

    # Definitions

    def _install(self, definitions: FlagDefinitions) -> None:
        client = build_client(definitions, self._config.app_name, self._config.environment)
        # One assignment each: an evaluation sees either the old version or the new.
        self._permissions = {**definitions.permissions(), **self._config.required_permissions}
        # The old client started no scheduler or thread: dropping it is enough.
        self._client = client
        self._definitions = definitions

    async def load(self) -> None:
        """The definitions to start with, without announcing anything: for listings."""
        try:
            self._install(parse_definitions(await self._source.fetch(), self._source.name))
        except FlagsSourceError as error:
            if isinstance(self._source, FileSource):
                raise
            if not await self._load_last_good_copy(error):
                raise

    async def _load_last_good_copy(self, error: FlagsSourceError) -> bool:
        raw = _text(await self._redis.get(self._redis_key))
        if raw is None:
            log.error(
                "flags source unavailable and no last good copy: every flag is off",
                error=str(error),
            )
            return False
        self._install(parse_definitions(raw, f"last good copy of {self._source.name}"))
        log.warning(
            "flags source unavailable: using the last good copy",
            error=str(error),
            flags=len(self._definitions.features),
        )
        return True

    async def refresh(self, *, initial: bool = False) -> bool:
        """Fetches the definitions; installs and announces a new version. True if it changed."""
        try:
            raw = await self._source.fetch()
        except FlagsSourceError as error:
            if initial and isinstance(self._source, FileSource):
                raise
            if initial:
                await self._load_last_good_copy(error)
            else:
                log.warning(
                    "flags refresh failed: keeping the current definitions", error=str(error)
                )
            return False
        if raw == self._definitions.raw and not initial:
            return False
        try:
            definitions = parse_definitions(raw, self._source.name)
        except FlagsSourceError as error:
            if initial:
                raise
            log.error(
                "flags refresh returned bad definitions: keeping the current ones", error=str(error)
            )
            return False
        previous_raw = _text(await self._redis.set(self._redis_key, raw, get=True))
        previous = self._definitions
        self._install(definitions)
        if previous_raw is None or previous_raw == raw:
            return False  # first copy ever, or another process already announced this version
        with contextlib.suppress(FlagsSourceError):
            previous = parse_definitions(previous_raw, "last good copy")
        changes = definitions.changed(previous)
        if changes:
            async with self._db.transaction() as session:
                for flag, enabled in changes.items():
                    add_event(session, FlagUpdated(flag=flag, enabled=enabled))
            log.info("flags changed", flags=sorted(changes))
        return bool(changes)

    def flags(self) -> list[FlagInfo]:
        """Every flag of the active definitions, by name."""
        return [
            FlagInfo(
                name=name,
                enabled=bool(feature.get("enabled", False)),
                strategies=[_strategy_text(s) for s in feature.get("strategies") or []],
                variants=[str(v.get("name")) for v in feature.get("variants") or []],
                required_permission=self._permissions.get(name),
                description=feature.get("description"),
            )
            for name, feature in sorted(self._definitions.features.items())
        ]

    # Evaluation

    @requires("flags:read")
    async def is_enabled(
        self,
        principal: Principal,
        name: str,
        *,
        team_id: str | None = None,
        remote_address: str | None = None,
    ) -> bool:
        """Whether `name` is on for the caller in their team; unknown flags are off."""
        context = await self._context(principal, name, team_id, remote_address)
        if context is None:
            return False
        enabled = self._client.is_enabled(name, context)
        self._counts[(name, enabled, None)] += 1
        return enabled

    @requires("flags:read")
    async def states(
        self,
        principal: Principal,
        *,
        team_id: str | None = None,
        remote_address: str | None = None,
    ) -> list[FlagState]:
        """Every flag and whether it is on for the caller in the team, by name. A
        listing, not a decision: it is not counted in flag.evaluated."""
        states = []
        for name, feature in sorted(self._definitions.features.items()):
            context = await self._context(principal, name, team_id, remote_address, count=False)
            enabled = context is not None and self._client.is_enabled(name, context)
            states.append(FlagState(name, _description(feature), enabled))
        return states

    @requires("flags:read")
    async def variant(
        self,
        principal: Principal,
        name: str,
        *,
        team_id: str | None = None,
        remote_address: str | None = None,
    ) -> FlagVariant:
        """The caller's variant of `name`: "disabled" when the flag is off or unknown."""
        context = await self._context(principal, name, team_id, remote_address)
        if context is None:
            return FlagVariant("disabled", False)
        result = self._client.get_variant(name, context)
        variant = FlagVariant(
            str(result.get("name", "disabled")),
            bool(result.get("enabled", False)),
            result.get("payload"),
        )
        enabled = bool(result.get("feature_enabled", variant.enabled))
        self._counts[(name, enabled, variant.name)] += 1
        return variant

    async def _context(
        self,
        principal: Principal,
        name: str,
        team_id: str | None,
        remote_address: str | None,
        *,
        count: bool = True,
    ) -> dict[str, Any] | None:
        """The SDK context for the caller, or None when the flag is off regardless of it."""
        if name not in self._definitions.features:
            if name not in self._unknown_logged and len(self._unknown_logged) < _MAX_LOGGED_UNKNOWN:
                self._unknown_logged.add(name)
                log.warning("unknown feature flag: off", flag=name)
            return None
        required = self._permissions.get(name)
        if required is not None and required not in principal.permissions(team_id):
            if count:
                self._counts[(name, False, None)] += 1
            return None
        role = principal.teams.get(team_id or "", "")
        context: dict[str, Any] = {
            "userId": principal.user_id,
            "sessionId": principal.session_id,
            "environment": self._config.environment,
            "properties": {
                "teamId": team_id or "",
                "role": role,
                "plan": await self._plan(team_id) if team_id else self._config.default_plan,
            },
        }
        if remote_address:
            context["remoteAddress"] = remote_address
        return context

    async def _plan(self, team_id: str) -> str:
        now = time.monotonic()
        cached = self._plans.get(team_id)
        if cached is not None and cached[1] > now:
            CACHE_REQUESTS.labels("flags", "hit").inc()
            return cached[0]
        CACHE_REQUESTS.labels("flags", "miss").inc()
        async with self._db.read() as session:
            row = await session.get(TeamPlan, team_id)
        plan = row.plan_id if row is not None and row.status != CANCELED else None
        plan = plan or self._config.default_plan
        if len(self._plans) >= _MAX_CACHED_PLANS:
            self._plans.clear()
        self._plans[team_id] = (plan, now + self._config.plan_cache_ttl_s)
        return plan

    def forget_plan(self, team_id: str) -> None:
        """The team's plan changed: read it again on its next evaluation."""
        self._plans.pop(team_id, None)

    # Telemetry and lifecycle

    async def flush(self) -> int:
        """Publishes the folded evaluation counts in one transaction; returns how many records."""
        counts, self._counts = self._counts, Counter()
        if not counts:
            return 0
        try:
            async with self._db.transaction() as session:
                for (flag, enabled, variant), count in counts.items():
                    add_event(
                        session,
                        FlagEvaluated(flag=flag, enabled=enabled, variant=variant, count=count),
                    )
        except Exception:
            self._counts.update(counts)  # kept for the next flush
            raise
        return len(counts)

    async def start(self) -> None:
        """Loads the definitions (announcing a change since the last run), then keeps them fresh."""
        await self.refresh(initial=True)
        self._tasks = [
            asyncio.create_task(
                self._every(self._config.refresh_interval_s, self.refresh), name="flags-refresh"
            ),
            asyncio.create_task(
                self._every(self._config.flush_interval_s, self.flush), name="flags-flush"
            ),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:
            await self.flush()
        except Exception as error:
            log.warning("flag evaluations not published at stop", error=repr(error))
        aclose: Callable[[], Awaitable[None]] | None = getattr(self._source, "aclose", None)
        if aclose is not None:
            await aclose()

    @staticmethod
    async def _every(interval_s: float, step: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await step()
            except Exception as error:
                log.warning("flags background step failed", step=step.__name__, error=repr(error))
