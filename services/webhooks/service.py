"""The webhooks facade: a team's endpoints, their secrets, their delivery log, replays."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.db import Database
from events.outbox import add_event
from schemas import WebhookEndpointChanged
from services.errors import BadUserInput, NotFound, QuotaExceeded, Unauthenticated
from services.principal import Caller, ExportSubject, Principal, require_self, requires
from services.webhooks.handlers import EVENT_TYPES, PENDING, Clock
from services.webhooks.http import UnsafeUrl, UrlPolicy, check_endpoint_url
from services.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookReplay
from services.webhooks.signing import SecretBox, new_secret

PERMISSION = "webhooks:manage"
# Svix's schedule: the first attempt at once, then after each failure these waits.
SCHEDULE_S: tuple[float, ...] = (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WebhooksConfig:
    policy: UrlPolicy
    schedule_s: tuple[float, ...] = SCHEDULE_S
    jitter: float = 0.2  # each wait is drawn within +-20% of the schedule's
    disable_after: timedelta = timedelta(days=5)  # of failing with no success
    secret_overlap: timedelta = timedelta(hours=24)  # the old secret signs too, after rotation
    timeout_s: float = 15.0  # a 2xx within this is a success
    max_response_bytes: int = 64 * 1024
    max_in_flight_per_endpoint: int = 4
    max_in_flight: int = 200
    poll_interval_s: float = 0.5
    lease_s: float = 60.0  # a claimed delivery is due again after this if its worker died
    max_endpoints_per_team: int = 20
    max_deliveries_listed: int = 500


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: str
    team_id: str
    url: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    # The signing secret: only in the answer to a creation or a rotation.
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    response_code: int | None
    latency_ms: int | None
    error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReplayView:
    id: str
    endpoint_id: str
    since: datetime
    status: str


@dataclass(frozen=True, slots=True)
class EndpointExport:
    """An endpoint of one of the user's teams, for their data export: no signing secret,
    and of the URL only its origin (paths and queries often carry a receiver's token)."""

    id: str
    team_id: str
    url_origin: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: datetime


def url_origin(url: str) -> str:
    """scheme://host[:port]: no user info, path, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class WebhooksService:
    def __init__(
        self, db: Database, box: SecretBox, config: WebhooksConfig, clock: Clock = utc_now
    ) -> None:
        self.db = db
        self.box = box
        self.config = config
        self.clock = clock

    @requires(PERMISSION)
    async def create_endpoint(
        self, principal: Principal, url: str, event_types: list[str], *, team_id: str | None = None
    ) -> EndpointView:
        assert team_id is not None
        types = self._checked_types(event_types)
        await self._check_url(url)
        now = self.clock()
        endpoint_id = str(uuid.uuid4())
        secret = new_secret()
        key_id, sealed = self.box.seal(secret, endpoint_id)
        async with self.db.transaction() as session:
            count = await session.scalar(
                select(func.count()).where(WebhookEndpoint.team_id == team_id)
            )
            if (count or 0) >= self.config.max_endpoints_per_team:
                raise QuotaExceeded(
                    f"a team has at most {self.config.max_endpoints_per_team} webhook endpoints"
                )
            row = WebhookEndpoint(
                id=endpoint_id,
                team_id=team_id,
                url=url,
                event_types=json.dumps(types),
                secret_key_id=key_id,
                secret_sealed=sealed,
                enabled=True,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            endpoint_changed(session, row, "created", principal)
        return _view(row, secret)

    @requires(PERMISSION)
    async def endpoints(
        self, principal: Principal, *, team_id: str | None = None
    ) -> list[EndpointView]:
        async with self.db.read() as session:
            rows = await session.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.team_id == team_id)
                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
            )
            return [_view(row) for row in rows.all()]

    async def update_endpoint(
        self,
        principal: Principal,
        endpoint_id: str,
        *,
        url: str | None = None,
        event_types: list[str] | None = None,
        enabled: bool | None = None,
    ) -> EndpointView:
        types = self._checked_types(event_types) if event_types is not None else None
        if url is not None:
            await self._check_url(url)
        async with self.db.transaction() as session:
            row = await self._managed(session, principal, endpoint_id)
            if url is not None:
                row.url = url
            if types is not None:
                row.event_types = json.dumps(types)
            if enabled is not None and enabled != row.enabled:
                row.enabled = enabled
                row.disabled_reason = None if enabled else "disabled by a team admin"
                row.failing_since = None
            row.updated_at = self.clock()
            endpoint_changed(session, row, "updated", principal)
        return _view(row)

    async def delete_endpoint(self, principal: Principal, endpoint_id: str) -> bool:
        async with self.db.transaction() as session:
            row = await self._managed(session, principal, endpoint_id)
            await session.delete(row)
            endpoint_changed(session, row, "deleted", principal)
        return True

    async def rotate_secret(self, principal: Principal, endpoint_id: str) -> EndpointView:
        """A new secret signs from now on; the old one signs beside it for the overlap."""
        secret = new_secret()
        key_id, sealed = self.box.seal(secret, endpoint_id)
        now = self.clock()
        async with self.db.transaction() as session:
            row = await self._managed(session, principal, endpoint_id)
            row.previous_key_id, row.previous_sealed = row.secret_key_id, row.secret_sealed
            row.previous_until = now + self.config.secret_overlap
            row.secret_key_id, row.secret_sealed = key_id, sealed
            row.updated_at = now
            endpoint_changed(session, row, "secret_rotated", principal)
        return _view(row, secret)

    async def deliveries(
        self, principal: Principal, endpoint_id: str, first: int = 50
    ) -> list[DeliveryView]:
        if not 1 <= first <= self.config.max_deliveries_listed:
            raise BadUserInput(f"first must be between 1 and {self.config.max_deliveries_listed}")
        async with self.db.read() as session:
            await self._managed(session, principal, endpoint_id)
            rows = await session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == endpoint_id)
                .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                .limit(first)
            )
            return [_delivery_view(row) for row in rows.all()]

    async def replay(self, principal: Principal, endpoint_id: str, since: datetime) -> ReplayView:
        """Asks the delivery worker to re-send every retained event since `since`."""
        now = self.clock()
        if since > now:
            raise BadUserInput("since is in the future")
        async with self.db.transaction() as session:
            endpoint = await self._managed(session, principal, endpoint_id)
            if not endpoint.enabled:
                raise BadUserInput("the endpoint is disabled: enable it before a replay")
            row = WebhookReplay(
                id=str(uuid.uuid4()),
                endpoint_id=endpoint_id,
                since=since,
                status=PENDING,
                events=0,
                created_at=now,
            )
            session.add(row)
        return ReplayView(row.id, endpoint_id, since, row.status)

    async def export_endpoints(self, caller: Caller, of: ExportSubject) -> list[EndpointExport]:
        """The endpoints of the user's teams where they manage webhooks (the only members
        who see them at all), for their data export."""
        require_self(caller, of.user_id)
        teams = of.teams_with(PERMISSION)
        if not teams:
            return []
        async with self.db.read() as session:
            rows = await session.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.team_id.in_(teams))
                .order_by(WebhookEndpoint.team_id, WebhookEndpoint.created_at, WebhookEndpoint.id)
            )
            return [
                EndpointExport(
                    row.id,
                    row.team_id,
                    url_origin(row.url),
                    json.loads(row.event_types),
                    row.enabled,
                    row.disabled_reason,
                    row.created_at,
                )
                for row in rows.all()
            ]

    def signing_secrets(self, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
        """The secrets that sign a delivery now: the current one, and during a
        rotation's overlap the previous one too."""
        secrets = [self.box.open(endpoint.secret_key_id, endpoint.secret_sealed, endpoint.id)]
        if (
            endpoint.previous_sealed is not None
            and endpoint.previous_key_id is not None
            and endpoint.previous_until is not None
            and now < endpoint.previous_until
        ):
            secrets.append(
                self.box.open(endpoint.previous_key_id, endpoint.previous_sealed, endpoint.id)
            )
        return secrets

    async def _managed(
        self, session: AsyncSession, principal: Principal, endpoint_id: str
    ) -> WebhookEndpoint:
        """The endpoint, if the caller manages webhooks in its team. A team the caller
        is not in answers as if the endpoint did not exist."""
        if not isinstance(principal, Principal):
            raise Unauthenticated("authentication required")
        row = await session.get(WebhookEndpoint, endpoint_id)
        if row is None or row.team_id not in principal.teams:
            raise NotFound("no such webhook endpoint")
        principal.require(PERMISSION, row.team_id)
        return row

    @staticmethod
    def _checked_types(event_types: list[str]) -> list[str]:
        if not event_types:
            raise BadUserInput("name at least one event type")
        unknown = sorted(set(event_types) - EVENT_TYPES)
        if unknown:
            raise BadUserInput(
                f"not an event type a team can receive: {', '.join(unknown[:5])[:200]}"
            )
        return sorted(set(event_types))

    async def _check_url(self, url: str) -> None:
        try:
            await check_endpoint_url(url, self.config.policy)
        except UnsafeUrl as error:
            raise BadUserInput(f"url: {error}", field="url") from None


def endpoint_changed(
    session: AsyncSession,
    row: WebhookEndpoint,
    change: Literal["created", "updated", "deleted", "secret_rotated", "disabled"],
    principal: Principal | None,
    *,
    enabled: bool | None = None,
) -> None:
    """Every committed change of an endpoint is an event (outbox, same transaction)."""
    add_event(
        session,
        WebhookEndpointChanged(
            team_id=row.team_id,
            endpoint_id=row.id,
            change=change,
            enabled=row.enabled if enabled is None else enabled,
            by_user_id=principal.user_id if principal is not None else None,
        ),
    )


def _view(row: WebhookEndpoint, secret: str | None = None) -> EndpointView:
    return EndpointView(
        id=row.id,
        team_id=row.team_id,
        url=row.url,
        event_types=json.loads(row.event_types),
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        secret=secret,
    )


def _delivery_view(row: WebhookDelivery) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        response_code=row.response_code,
        latency_ms=row.latency_ms,
        error=row.error,
        created_at=row.created_at,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
    )
