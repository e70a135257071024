"""The delivery worker: sends due deliveries, retries them on schedule, disables dead endpoints.

Runs beside the `webhooks` consumer (the composition root starts and stops it).
Each endpoint has its own in-flight limit, and the worker never waits for one
answer before starting others, so a slow or dead endpoint only ever holds its
own slots. A delivery is claimed by pushing its due time one lease ahead (a
conditional UPDATE, so two workers never both send it); a worker that dies
mid-send leaves it due again when the lease ends. Every time comes from the
injected clock, so tests run the whole schedule in seconds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from events.consumer import ProcessedEvent
from events.db import Database
from events.envelope import Envelope
from events.outbox import add_event
from events.replay import ReplayReport, ReplayTarget
from schemas import Event, NotificationRequested
from services.webhooks.handlers import (
    CONSUMER,
    DELIVERABLE,
    FAILED,
    PENDING,
    SUCCEEDED,
    schedule,
    team_of,
)
from services.webhooks.http import Attempt, HttpDelivery
from services.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookReplay
from services.webhooks.service import WebhooksService, endpoint_changed
from services.webhooks.signing import signature_header

log = structlog.get_logger(__name__)

# Runs a replay target from `since` through the events/replay machinery.
Replayer = Callable[[ReplayTarget, datetime], Awaitable[ReplayReport]]
RUNNING, DONE = "running", "done"


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        service: WebhooksService,
        http: HttpDelivery,
        replayer: Replayer | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._service = service
        self._config = service.config
        self._http = http
        self._replayer = replayer
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._by_endpoint: dict[str, set[str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    await self.dispatch_due()
                    await self._start_replays()
                except Exception as error:  # a database outage is waited out
                    log.warning("webhook dispatch failed", error=repr(error))
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self._config.poll_interval_s)
                except TimeoutError:
                    pass
        finally:
            await self._settle()
            await self._http.close()

    async def _settle(self) -> None:
        """In-flight sends get a moment to record their outcome; a hanging one is
        cancelled (its lease makes it due again)."""
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=2)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return sum(len(each) for each in self._by_endpoint.values())

    async def dispatch_due(self) -> int:
        """Claims and starts every due delivery its endpoint has a slot for."""
        now = self._service.clock()
        async with self._db.read() as session:
            due = (
                await session.execute(
                    select(WebhookDelivery.id, WebhookDelivery.endpoint_id)
                    .where(
                        WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now
                    )
                    .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                    .limit(self._config.max_in_flight * 2)
                )
            ).all()
        started = 0
        lease_end = now + timedelta(seconds=self._config.lease_s)
        for delivery_id, endpoint_id in due:
            if self.in_flight >= self._config.max_in_flight:
                break
            slots = self._by_endpoint.setdefault(endpoint_id, set())
            if delivery_id in slots or len(slots) >= self._config.max_in_flight_per_endpoint:
                continue
            async with self._db.transaction() as session:
                claimed = await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id == delivery_id,
                        WebhookDelivery.status == PENDING,
                        WebhookDelivery.next_attempt_at <= now,
                    )
                    .values(next_attempt_at=lease_end)
                )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                continue  # another worker has it
            slots.add(delivery_id)
            task = asyncio.create_task(self._deliver(delivery_id, endpoint_id))
            self._tasks.add(task)
            task.add_done_callback(partial(self._done, delivery_id, endpoint_id))
            started += 1
        return started

    def _done(self, delivery_id: str, endpoint_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        slots = self._by_endpoint.get(endpoint_id)
        if slots is not None:
            slots.discard(delivery_id)
            if not slots:
                del self._by_endpoint[endpoint_id]
        if not task.cancelled() and task.exception() is not None:
            log.warning("webhook delivery failed", error=repr(task.exception()))
        self._wake.set()  # a slot is free: its endpoint's next delivery may go

    async def _deliver(self, delivery_id: str, endpoint_id: str) -> None:
        async with self._db.read() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            endpoint = await session.get(WebhookEndpoint, endpoint_id)
        if delivery is None:
            return
        if endpoint is None or not endpoint.enabled:
            disabled = Attempt(None, 0, "the endpoint is disabled")
            await self._record(delivery_id, disabled, final=True)
            return
        now = self._service.clock()
        timestamp = int(now.timestamp())
        headers = {
            "content-type": "application/cloudevents+json",
            "user-agent": "Haunted-Webhooks/1",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(
                self._service.signing_secrets(endpoint, now),
                delivery.event_id,
                timestamp,
                delivery.body,
            ),
        }
        attempt = await self._http.post(endpoint.url, headers, delivery.body)
        await self._record(delivery_id, attempt)

    async def _record(self, delivery_id: str, attempt: Attempt, *, final: bool = False) -> None:
        async with self._db.transaction() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is None or delivery.status != PENDING:
                return
            endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
            now = self._service.clock()
            delivery.attempts += 1
            delivery.response_code = attempt.status
            delivery.latency_ms = attempt.latency_ms
            delivery.error = attempt.error[:200] if attempt.error else None
            delivery.last_attempt_at = now
            if attempt.succeeded:
                delivery.status = SUCCEEDED
                if endpoint is not None:
                    endpoint.failing_since = None
                return
            if final or delivery.attempts >= len(self._config.schedule_s):
                delivery.status = FAILED
            else:
                wait = self._config.schedule_s[delivery.attempts]
                wait *= 1 + self._rng.uniform(-self._config.jitter, self._config.jitter)
                delivery.next_attempt_at = now + timedelta(seconds=wait)
            if endpoint is not None and endpoint.enabled and not final:
                await self._count_failure(session, endpoint, now)

    async def _count_failure(
        self, session: AsyncSession, endpoint: WebhookEndpoint, now: datetime
    ) -> None:
        """An endpoint that has failed, with no success, for `disable_after` is
        disabled and its team told, once: the disabling is a conditional UPDATE, so
        of two failures recorded at once only one disables and notifies."""
        if endpoint.failing_since is None:
            endpoint.failing_since = now
            return
        if now - endpoint.failing_since < self._config.disable_after:
            return
        disabled = await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id, WebhookEndpoint.enabled.is_(True))
            .values(enabled=False, disabled_reason="failing for too long", updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if disabled.rowcount != 1:  # type: ignore[attr-defined]
            return
        endpoint_changed(session, endpoint, "disabled", None, enabled=False)
        host = urlsplit(endpoint.url).hostname or "?"
        add_event(
            session,
            NotificationRequested(
                team_id=endpoint.team_id,
                type="webhook.endpoint_disabled",
                title="A webhook endpoint was disabled",
                body=f"Deliveries to {host} failed for "
                f"{self._config.disable_after.days} days, so it no longer receives events. "
                "Fix it, then enable it again (and replay what it missed).",
                data={"endpoint_id": endpoint.id},
            ),
        )
        log.info("webhook endpoint disabled", endpoint_id=endpoint.id, team_id=endpoint.team_id)

    async def _start_replays(self) -> None:
        if self._replayer is None:
            return
        async with self._db.transaction() as session:
            rows = (
                await session.scalars(
                    select(WebhookReplay).where(WebhookReplay.status == PENDING).limit(10)
                )
            ).all()
            for row in rows:
                row.status = RUNNING
            claimed = [(row.id, row.endpoint_id, row.since) for row in rows]
        for replay_id, endpoint_id, since in claimed:
            task = asyncio.create_task(self._replay(replay_id, endpoint_id, since))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _replay(self, replay_id: str, endpoint_id: str, since: datetime) -> None:
        """Re-sends to one endpoint what the topics retain since `since`: the events
        go through the replay machinery to a handler that makes them due again for
        this endpoint only. Its own consumer name keeps the live group's
        idempotency records out of the way; they are dropped afterwards."""
        assert self._replayer is not None
        consumer = f"{CONSUMER}.replay.{replay_id}"

        async def handler(session: AsyncSession, event: Event, envelope: Envelope) -> None:
            await schedule(
                session,
                envelope,
                team_of(event),
                self._service.clock(),
                endpoint_id=endpoint_id,
                again=True,
            )

        target = ReplayTarget(consumer, tuple(model.topic for model in DELIVERABLE), handler)
        status = DONE
        handled = 0
        try:
            report = await self._replayer(target, since)
            handled = report.handled
        except Exception as error:
            log.warning("webhook replay failed", replay_id=replay_id, error=repr(error))
            status = FAILED
        async with self._db.transaction() as session:
            await session.execute(delete(ProcessedEvent).where(ProcessedEvent.consumer == consumer))
            row = await session.get(WebhookReplay, replay_id)
            if row is not None:
                row.status, row.events, row.finished_at = status, handled, self._service.clock()
        self._wake.set()
