"""The composition root: builds every resource once and wires the process's parts.

`haunted dev` runs every part in one process; `haunted serve` the gateway;
`haunted worker` the consumers and the outbox relay of the named services.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import fakeredis
import socketio
import structlog
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from redis.asyncio import BlockingConnectionPool, Redis

from events.broker import (
    Bus,
    EventProducer,
    KafkaProducer,
    KafkaSettings,
    RelayProducer,
    Subscriber,
    ensure_topics,
)
from events.consumer import EventConsumers, RetryPolicy
from events.db import Database
from events.dialect import SqlDialect
from events.fanout import pin_start_offsets, subscribe_fanout
from events.lag import sample_lag
from events.metrics import BUS_CONNECTED
from events.outbox import OutboxRelay
from events.replay import ReplayReport, ReplayTarget, replay
from gateway import PushHub, Services, build_socketio, create_app
from gateway.push import Presence, RealtimeLimits
from gateway.sockets import socketio_server
from haunted import migrations
from haunted.probes import probe_app, record_build_info, sample_dependencies, zero_handled
from haunted.services import NAMES, SPECS, ProcessTask, build_services, facades_of
from haunted.settings import MEMORY, Settings
from haunted.telemetry import instrument_database, setup_tracing
from services.notifications import caught_mail

log = structlog.get_logger(__name__)

_BUS_MAX_BACKOFF_S = 10.0  # the longest wait between two attempts to reach the broker
_STOP_STEP_S = 15.0  # the longest one shutdown step may take before the next one runs


def build_redis(url: str, max_connections: int = 200) -> Redis:
    if url == MEMORY:
        return fakeredis.FakeAsyncRedis()
    # A burst (thousands of socket handshakes) waits for a connection instead of
    # failing once the pool is full, which redis-py's default pool does.
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=10)
    return Redis(connection_pool=pool)


def tune_gc() -> None:
    """For a long-running process, once its modules are loaded.

    What is alive now (modules, mostly) leaves the collector's sight, and the
    young generation is collected every 50,000 allocations rather than 700: one
    fetched batch of 10,000 events allocates hundreds of thousands of objects,
    and every collection that reaches the old generation walks all live ones.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def kafka_settings(settings: Settings, bootstrap: str | None = None) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=bootstrap or settings.kafka.servers,
        partitions=settings.kafka.partitions,
        replication_factor=settings.kafka.replication_factor,
        session_timeout_ms=settings.kafka.session_timeout_ms,
        heartbeat_interval_ms=settings.kafka.heartbeat_interval_ms,
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        idempotence=settings.kafka.idempotence,
        dlq_retention_ms=settings.kafka.dlq_retention_s * 1000,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.kafka.consumer_max_attempts,
        backoff_s=settings.kafka.consumer_retry_backoff_s,
        max_backoff_s=settings.kafka.consumer_max_backoff_s,
        handler_timeout_s=settings.kafka.consumer_handler_timeout_s,
    )


@dataclass
class Haunted:
    """One process's resources and parts. Build with `Haunted.build`, run with `running()`."""

    settings: Settings
    db: Database
    redis: Redis
    kafka: KafkaSettings
    broker: Bus
    producer: EventProducer
    services: Services
    consumers: EventConsumers
    relay: OutboxRelay
    relay_producer: RelayProducer
    hub: PushHub
    sio: socketio.AsyncServer
    gateway: bool
    workers: tuple[str, ...]
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _fanout: Subscriber | None = None
    _bus: asyncio.Task[None] | None = None
    _bus_tried: asyncio.Event = field(default_factory=asyncio.Event)
    _service_tasks: list[ProcessTask] = field(default_factory=list)
    tracing: TracerProvider | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        gateway: bool = True,
        workers: Iterable[str] = NAMES,
        producer: EventProducer | None = None,
    ) -> Haunted:
        """`producer`: where consumers send dead letters; the broker's by default (a
        fake in unit tests, events/testing.py). Building connects to nothing."""
        kafka = kafka_settings(settings)
        process = ("dev" if workers else "gateway") if gateway else "worker"
        tracing = setup_tracing(settings, process)
        db = Database(settings.database_url, slow_query_ms=settings.slow_query_ms)
        if tracing is not None:
            instrument_database(db.engine, tracing)
        redis = build_redis(settings.redis_url)
        broker = Bus(kafka)
        producer = producer or KafkaProducer(broker)
        services = build_services(settings, db, redis)
        consumers = EventConsumers(
            db,
            producer,
            kafka,
            retry_policy(settings),
        )
        relay_producer = RelayProducer(kafka)
        relay = OutboxRelay(
            db,
            relay_producer,
            batch_size=settings.kafka.outbox_batch_size,
            poll_interval_s=settings.kafka.outbox_poll_interval_s,
            retention_s=settings.kafka.outbox_retention_s,
            processed_retention_s=settings.kafka.processed_events_retention_s,
        )
        hub = PushHub(
            socketio_server(cors_origins=settings.allowed_origins),
            services.notifications,
            Presence(redis, settings.realtime.presence_ttl_s),
            RealtimeLimits(
                max_connections=settings.realtime.max_connections,
                max_queued_packets=settings.realtime.max_queued_packets,
                subscription_queue=settings.realtime.subscription_max_queued_events,
                presence_heartbeat_s=settings.realtime.presence_heartbeat_s,
            ),
            reauthorize=services.auth.reauthorize,
            broker_alive=broker.ping,
        )
        sio = build_socketio(services.auth, hub)
        app = cls(
            settings,
            db,
            redis,
            kafka,
            broker,
            producer,
            services,
            consumers,
            relay,
            relay_producer,
            hub,
            sio,
            gateway,
            tuple(workers),
        )
        app.tracing = tracing
        app._register_subscribers()
        return app

    def _register_subscribers(self) -> None:
        """Explicit registration: the consumer groups of the services this process
        runs, and the gateway's fan-out."""
        facades = facades_of(self.services)
        for spec in SPECS:
            if spec.name in self.workers:
                for registry in spec.registries(facades):
                    registry.subscribe(self.consumers, self.broker)
        if self.gateway:
            self._fanout = subscribe_fanout(
                self.broker,
                self.hub.deliver,
                fetch_max_wait_ms=self.settings.realtime.fanout_fetch_max_wait_ms,
            )

    async def start(self) -> None:
        """Starts every part. The broker may be down: the outbox keeps what is
        committed meanwhile, and the bus (topics, producer, consumer groups,
        fan-out) is brought up in the background as soon as the broker answers."""
        if self.settings.env == "dev" or self.db.dialect is SqlDialect.SQLITE:
            await migrations.upgrade(self.settings.database_url)
        if self.gateway:
            await self.hub.start()
            if self.settings.auth.session_local_copy:
                await self.services.auth.session_store.start_local_copy()
            await self.services.flags.start()
        record_build_info(("dev" if self.workers else "gateway") if self.gateway else "worker")
        self._tasks.append(
            asyncio.create_task(
                sample_dependencies(
                    {**self.readiness(), "broker": self.broker_answers}, self._stopping
                ),
                name="dependency-checks",
            )
        )
        if self.workers:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
            groups = self.consumers.groups
            zero_handled({group.removeprefix("haunted."): topics for group, _, topics in groups})
            self._tasks.append(
                asyncio.create_task(
                    sample_lag([(group, sub) for group, sub, _ in groups], self._stopping),
                    name="consumer-lag",
                )
            )
        facades = facades_of(self.services)
        for spec in SPECS:
            if spec.name in self.workers and spec.task is not None:
                task = spec.task(self.settings, facades, self._replay)
                self._service_tasks.append(task)
                self._tasks.append(asyncio.create_task(task.run(), name=f"{spec.name}-task"))
        self._bus = asyncio.create_task(self._connect_bus(), name="bus-connect")
        # A reachable broker is up before start() returns, as before; an unreachable
        # one is retried in the background after this first attempt.
        await self._bus_tried.wait()
        log.info(
            "haunted started",
            gateway=self.gateway,
            workers=list(self.workers),
            bus_connected=self._bus.done(),
        )

    async def bus_connected(self) -> None:
        """Waits until the bus is up (for callers that need it, e.g. tests)."""
        assert self._bus is not None, "start() first"
        await asyncio.shield(self._bus)

    async def _connect_bus(self) -> None:
        failures = 0
        while True:
            try:
                await ensure_topics(self.kafka)
                await self.broker.start()
                if self._fanout is not None:
                    await pin_start_offsets(self._fanout)
            except Exception as error:  # the broker is away (or went away meanwhile)
                failures += 1
                BUS_CONNECTED.set(0)
                delay = min(_BUS_MAX_BACKOFF_S, 0.5 * 2 ** min(failures, 10))
                delay = delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 (not a secret)
                log.warning(
                    "broker unavailable; retrying", error=repr(error), wait_s=round(delay, 1)
                )
                self._bus_tried.set()
                with contextlib.suppress(Exception):
                    await self.broker.stop()  # from scratch next time: nothing half started
                await asyncio.sleep(delay)
                continue
            BUS_CONNECTED.set(1)
            self._bus_tried.set()
            log.info("bus connected", failures=failures)
            return

    async def stop(self) -> None:
        """Drains and closes every part, in bounded time: the relay finishes its round,
        the consumers stop taking batches and commit those in flight while their
        group connection is still up, then the broker, presence and the stores
        close. Each step runs even if one before it failed."""
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        if self.gateway:
            steps += [
                ("flags", self.services.flags.stop),
                ("presence", self.hub.stop),
                ("session copy", self.services.auth.session_store.stop_local_copy),
            ]
        steps += [
            ("relay", self._stop_tasks),
            ("relay producer", self.relay_producer.stop),
            ("bus connect", self._stop_connecting),
            # Before the broker stops: their commits need the group's connection.
            ("consumers", self.consumers.drain),
            ("broker", self.broker.stop),
            ("llm", self.services.llm.close),
            ("redis", self.redis.aclose),
            ("database", self.db.dispose),
            ("traces", self._flush_traces),
        ]
        for name, step in steps:
            try:
                await asyncio.wait_for(step(), _STOP_STEP_S)
            except Exception as error:  # the next steps still run
                log.warning("shutdown step failed", step=name, error=repr(error))

    async def _flush_traces(self) -> None:
        if self.tracing is not None:  # the spans still batched for export
            await asyncio.to_thread(self.tracing.force_flush, 5_000)

    async def _stop_tasks(self) -> None:
        self.relay.stop()
        self._stopping.set()
        for service_task in self._service_tasks:
            service_task.stop()
        self._service_tasks.clear()
        for task in self._tasks:
            try:
                await asyncio.wait_for(asyncio.shield(task), _STOP_STEP_S - 1)
            except TimeoutError:
                log.warning("a background task did not stop in time", task=task.get_name())
                task.cancel()
        self._tasks.clear()

    async def _stop_connecting(self) -> None:
        if self._bus is not None and not self._bus.done():
            self._bus.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bus

    async def _replay(self, target: ReplayTarget, since: datetime) -> ReplayReport:
        """Replays retained topics into a service's target (its process task asked)."""
        await self.bus_connected()
        return await replay(target, self.consumers, self.db, self.kafka, since=since)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Haunted]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    def readiness(self) -> dict[str, Callable[[], Any]]:
        """What a request needs (runtime.md's /readyz): not the broker."""
        return {"database": self.db.ping, "cache": self.redis.ping}

    async def broker_answers(self) -> None:
        if not await self.broker.ping():
            raise ConnectionError("broker does not answer")

    def probe_app(self) -> FastAPI:
        """/metrics, /healthz and /readyz of a worker (HAUNTED_WORKER_PORT): a worker
        is ready when it can reach what it consumes from and writes to."""
        s = self.settings
        return probe_app(
            {**self.readiness(), "broker": self.broker_answers},
            metrics_token=s.metrics_token.get_secret_value() if s.metrics_token else None,
            metrics_open=s.env != "prod",
        )

    def asgi_app(self) -> socketio.ASGIApp:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            async with self.running():
                yield

        from gateway.app import GraphQLConfig
        from gateway.persisted import load_allowlist

        s = self.settings
        prod = s.env == "prod"
        allowlist = load_allowlist(s.graphql.allowlist_file) if s.graphql.allowlist_file else None
        graphql = GraphQLConfig(
            max_body_bytes=s.graphql.max_body_bytes,
            max_tokens=s.graphql.max_tokens,
            max_depth=s.graphql.max_depth,
            max_aliases=s.graphql.max_aliases,
            max_cost=s.graphql.max_cost,
            default_list_size=s.graphql.default_list_size,
            max_batch=s.graphql.max_batch,
            timeout_s=s.graphql.timeout_s,
            introspection=not prod if s.graphql.introspection is None else s.graphql.introspection,
            suggestions=not prod if s.graphql.suggestions is None else s.graphql.suggestions,
            document_cache_entries=s.graphql.document_cache_entries,
            document_cache_max_document_chars=s.graphql.document_cache_max_document_chars,
            document_cache_max_total_chars=s.graphql.document_cache_max_total_chars,
            persisted_queries=s.graphql.persisted_queries,
            persisted_query_ttl_s=s.graphql.persisted_query_ttl_s,
            allowlist=allowlist,
            explorer=s.env == "dev",
        )
        return create_app(
            self.services,
            self.hub,
            self.sio,
            readiness=self.readiness(),
            broker=self.broker_answers,
            lifespan=lifespan,
            graphql=graphql,
            redis=self.redis,
            cors_origins=s.allowed_origins,
            debug=False,
            metrics_token=s.metrics_token.get_secret_value() if s.metrics_token else None,
            metrics_open=s.env != "prod",
            dev_mail=partial(caught_mail, s.mail_dir) if s.env == "dev" else None,
            tracer_provider=self.tracing,
        )


__all__ = ["Haunted", "build_redis", "build_services", "kafka_settings", "tune_gc"]
