"""The composition root: builds every resource once and wires the process's parts.

`haunted dev` runs every part in one process; `haunted serve` the gateway;
`haunted worker` the consumers and the outbox relay of the named services.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import fakeredis
import socketio
import structlog
from fastapi import FastAPI
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.subscriber.usecase import LogicSubscriber
from redis.asyncio import BlockingConnectionPool, Redis

from events.broker import KafkaProducer, KafkaSettings, build_broker, ensure_topics
from events.consumer import EventConsumers, RetryPolicy
from events.db import Database
from events.fanout import pin_start_offsets, subscribe_fanout
from events.outbox import OutboxRelay
from events.replay import ReplayTarget
from gateway import PushHub, Services, build_socketio, create_app
from gateway.push import Presence, RealtimeLimits
from gateway.sockets import socketio_server
from haunted import migrations
from haunted.keyring import load_pii_keys, load_previous_public_keys
from haunted.keys import load_signing_key
from haunted.settings import MEMORY, Settings
from services import analytics, flags, llm, notifications
from services.analytics import AnalyticsLimits, AnalyticsService
from services.auth import (
    Accounts,
    ApiKeyService,
    AuthPolicy,
    AuthRateLimiter,
    AuthService,
    PasswordHasher,
    PiiCipher,
    SessionStore,
    TeamService,
    TokenIssuer,
)
from services.billing import BillingConfig, BillingService, StripeGateway, load_plans

log = structlog.get_logger(__name__)

SERVICES = ("auth", "billing", "llm", "notifications", "analytics", "flags")


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
        bootstrap_servers=bootstrap or settings.kafka_servers,
        partitions=settings.kafka_partitions,
        replication_factor=settings.kafka_replication_factor,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )


def replay_targets() -> dict[str, ReplayTarget]:
    """What `haunted replay SERVICE` can replay: each service's consumer, topics and handler."""
    from sqlalchemy import delete
    from sqlalchemy.ext.asyncio import AsyncSession

    from events.envelope import Envelope
    from schemas import Event
    from services.notifications.handlers import MEMBERSHIP_TOPICS, follow_memberships
    from services.notifications.models import TeamMember as NotificationMember

    async def notification_members(session: AsyncSession, event: Event, _: Envelope) -> None:
        await follow_memberships(session, event)

    async def clear_notification_members(session: AsyncSession) -> None:
        await session.execute(delete(NotificationMember))

    return {
        "analytics": ReplayTarget(
            analytics.CONSUMER,
            analytics.TOPICS,
            batch_handler=analytics.record_batch,
            rebuild=analytics.clear_store,
        ),
        "notifications": ReplayTarget(
            notifications.CONSUMER, notifications.TOPICS, handler=notifications.on_event
        ),
        "llm": ReplayTarget(
            llm.CONSUMER, llm.TOPICS, handler=llm.on_subscription, rebuild=llm.clear_store
        ),
        # Only the membership read model: a rebuild must not notify anyone twice.
        "notifications.memberships": ReplayTarget(
            "notifications.memberships",
            (*MEMBERSHIP_TOPICS, "team.role_changed"),
            handler=notification_members,
            rebuild=clear_notification_members,
        ),
    }


def build_flags(settings: Settings, db: Database, redis: Redis) -> flags.FlagsService:
    """Flags from the Unleash server when one is configured, else from the flags file."""
    source: flags.FileSource | flags.UnleashServerSource = flags.FileSource(settings.flags_file)
    if settings.unleash_url:
        token = settings.unleash_api_token.get_secret_value() if settings.unleash_api_token else ""
        source = flags.UnleashServerSource(
            settings.unleash_url, token, settings.flags_app_name, settings.flags_fetch_timeout_s
        )
    config = flags.FlagsConfig(
        app_name=settings.flags_app_name,
        environment=settings.env,
        refresh_interval_s=settings.flags_refresh_interval_s,
        flush_interval_s=settings.flags_flush_interval_s,
        plan_cache_ttl_s=settings.flags_plan_cache_ttl_s,
        default_plan=settings.flags_default_plan,
        required_permissions=settings.flags_required_permissions,
    )
    return flags.FlagsService(db, redis, source, config)


def build_llm(settings: Settings, db: Database, redis: Redis) -> llm.LlmService:
    """The LLM gateway: prompt files checked now (a broken one stops the start)."""
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    provider = llm.build_provider(
        api_key=api_key,
        base_url=settings.openai_base_url,
        timeout_s=settings.llm_timeout_s,
        connect_timeout_s=settings.llm_connect_timeout_s,
    )
    offline = api_key is None and settings.openai_base_url is None
    reload = settings.llm_prompts_reload
    return llm.LlmService(
        db,
        redis,
        llm.PromptLibrary(settings.llm_prompts_dir),
        provider,
        llm.LlmConfig(
            default_plan_id=settings.llm_default_plan_id,
            default_tokens_per_period=settings.llm_default_tokens_per_period,
            tokens_per_period=settings.llm_tokens_per_period,
            requests_per_minute=settings.llm_requests_per_minute,
            tokens_per_minute=settings.llm_tokens_per_minute,
            default_requests_per_minute=settings.llm_default_requests_per_minute,
            default_tokens_per_minute=settings.llm_default_tokens_per_minute,
            prices=settings.llm_prices,
            max_retries=settings.llm_max_retries,
            retry_backoff_s=settings.llm_retry_backoff_s,
            retry_max_wait_s=settings.llm_retry_max_wait_s,
            reload_prompts=settings.env == "dev" if reload is None else reload,
            force_model=llm.OFFLINE_MODEL if offline else None,
        ),
    )


def build_services(settings: Settings, db: Database, redis: Redis) -> Services:
    """Every facade, built once with its dependencies."""
    ring, lookup_key = load_pii_keys(settings)
    sessions = SessionStore(redis, settings.session_ttl_s, settings.permissions_cache_ttl_s)
    accounts = Accounts(db, PiiCipher(ring, lookup_key), sessions)
    tokens = TokenIssuer(
        load_signing_key(settings),
        verify_only=load_previous_public_keys(settings),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl=timedelta(seconds=settings.access_token_ttl_s),
    )
    api_keys = ApiKeyService(accounts, redis)
    auth = AuthService(
        accounts,
        tokens,
        PasswordHasher(settings.bcrypt_rounds),
        api_keys,
        AuthRateLimiter(
            settings.redis_url,
            per_ip=settings.auth_rate_limit_per_ip,
            per_account=settings.auth_rate_limit_per_account,
        ),
        AuthPolicy(
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
            lockout_threshold=settings.lockout_threshold,
            lockout_duration=timedelta(seconds=settings.lockout_duration_s),
        ),
    )
    billing = BillingService(
        db,
        load_plans(settings.plans_file),
        BillingConfig(
            env=settings.env,
            public_url=settings.billing_public_url or f"http://{settings.host}:{settings.port}",
            webhook_secret=(
                settings.stripe_webhook_secret.get_secret_value()
                if settings.stripe_webhook_secret
                else None
            ),
            webhook_tolerance_s=settings.stripe_webhook_tolerance_s,
            webhook_max_body_bytes=settings.stripe_webhook_max_body_bytes,
        ),
        (
            StripeGateway(
                settings.stripe_api_key.get_secret_value(),
                api_base=settings.stripe_api_base,
                timeout_s=settings.stripe_timeout_s,
            )
            if settings.stripe_api_key
            else None
        ),
    )
    return Services(
        auth=auth,
        teams=TeamService(accounts, timedelta(seconds=settings.invite_ttl_s)),
        api_keys=api_keys,
        analytics=AnalyticsService(
            db,
            redis,
            AnalyticsLimits(
                cache_ttl_s=settings.analytics_cache_ttl_s,
                track_rate_limit=settings.analytics_track_rate_limit,
                track_max_bytes=settings.analytics_track_max_bytes,
                track_max_depth=settings.analytics_track_max_depth,
            ),
            redis_url=settings.redis_url,
        ),
        notifications=notifications.NotificationsService(db),
        flags=build_flags(settings, db, redis),
        billing=billing,
        llm=build_llm(settings, db, redis),
    )


@dataclass
class Haunted:
    """One process's resources and parts. Build with `Haunted.build`, run with `running()`."""

    settings: Settings
    db: Database
    redis: Redis
    kafka: KafkaSettings
    broker: KafkaBroker
    producer: KafkaProducer
    services: Services
    consumers: EventConsumers
    relay: OutboxRelay
    hub: PushHub
    sio: socketio.AsyncServer
    gateway: bool
    workers: tuple[str, ...]
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _fanout: LogicSubscriber[Any] | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        gateway: bool = True,
        workers: Iterable[str] = SERVICES,
    ) -> Haunted:
        kafka = kafka_settings(settings)
        db = Database(settings.database_url)
        redis = build_redis(settings.redis_url)
        broker = build_broker(kafka)
        producer = KafkaProducer(broker)
        services = build_services(settings, db, redis)
        consumers = EventConsumers(
            db,
            producer,
            kafka,
            RetryPolicy(settings.consumer_max_attempts, settings.consumer_retry_backoff_s),
        )
        relay = OutboxRelay(
            db,
            producer,
            batch_size=settings.outbox_batch_size,
            poll_interval_s=settings.outbox_poll_interval_s,
            retention_s=settings.outbox_retention_s,
        )
        hub = PushHub(
            socketio_server(),
            services.notifications,
            Presence(redis, settings.presence_ttl_s),
            RealtimeLimits(
                max_connections=settings.socketio_max_connections,
                max_queued_packets=settings.socketio_max_queued_packets,
                subscription_queue=settings.subscription_max_queued_events,
                presence_heartbeat_s=settings.presence_heartbeat_s,
            ),
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
            hub,
            sio,
            gateway,
            tuple(workers),
        )
        app._register_routers()
        return app

    def _register_routers(self) -> None:
        """Explicit registration: the routers of the services this process runs."""
        routers: dict[str, Callable[[EventConsumers], KafkaRouter]] = {
            "analytics": analytics.build_router,
            "notifications": notifications.build_router,
            "llm": llm.build_router,
            "flags": lambda consumers: flags.build_router(
                consumers, self.services.flags.forget_plan
            ),
        }
        for name in self.workers:
            if name in routers:
                self.broker.include_router(routers[name](self.consumers))
        if self.gateway:
            fanout = KafkaRouter()
            self._fanout = subscribe_fanout(
                fanout, self.hub.deliver, fetch_max_wait_ms=self.kafka.fetch_max_wait_ms
            )
            self.broker.include_router(fanout)

    async def start(self) -> None:
        if self.settings.env == "dev" or self.db.is_sqlite:
            await migrations.upgrade(self.settings.database_url)
        await ensure_topics(self.kafka)
        await self._start_broker()
        if self._fanout is not None:
            await pin_start_offsets(self._fanout)
        if self.gateway:
            await self.hub.start()
            await self.services.flags.start()
        if self.workers:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        log.info("haunted started", gateway=self.gateway, workers=list(self.workers))

    async def _start_broker(self) -> None:
        # FastStream's broker.start() starts subscribers one after another, and each
        # fetches metadata topic by topic (about a second for the catalog): start
        # them together. Same steps as KafkaBroker.start otherwise.
        await self.broker.connect()
        await asyncio.gather(*(subscriber.start() for subscriber in self.broker.subscribers))
        for publisher in self.broker.publishers:
            await publisher.start()
        self.broker.running = True

    async def stop(self) -> None:
        if self.gateway:
            await self.services.flags.stop()
        self.relay.stop()
        for task in self._tasks:
            try:
                await asyncio.wait_for(asyncio.shield(task), 10)
            except TimeoutError:
                log.warning("a background task did not stop in time", task=task.get_name())
                task.cancel()
        self._tasks.clear()
        await self.broker.stop()
        await self.consumers.drain()  # batches being written when the broker stopped
        await self.services.llm.close()
        await self.redis.aclose()
        await self.db.dispose()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Haunted]:
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    def readiness(self) -> dict[str, Callable[[], Any]]:
        async def broker_ready() -> None:
            if not await self.broker.ping(timeout=1.0):
                raise ConnectionError("broker does not answer")

        return {"database": self.db.ping, "cache": self.redis.ping, "broker": broker_ready}

    def asgi_app(self) -> socketio.ASGIApp:
        @asynccontextmanager
        async def lifespan(_: FastAPI) -> AsyncIterator[None]:
            async with self.running():
                yield

        from gateway.app import GraphQLConfig
        from gateway.persisted import load_allowlist

        s = self.settings
        prod = s.env == "prod"
        allowlist = load_allowlist(s.graphql_allowlist_file) if s.graphql_allowlist_file else None
        graphql = GraphQLConfig(
            max_body_bytes=s.graphql_max_body_bytes,
            max_tokens=s.graphql_max_tokens,
            max_depth=s.graphql_max_depth,
            max_aliases=s.graphql_max_aliases,
            max_cost=s.graphql_max_cost,
            default_list_size=s.graphql_default_list_size,
            max_batch=s.graphql_max_batch,
            timeout_s=s.graphql_timeout_s,
            introspection=not prod if s.graphql_introspection is None else s.graphql_introspection,
            suggestions=not prod if s.graphql_suggestions is None else s.graphql_suggestions,
            document_cache_entries=s.graphql_document_cache_entries,
            document_cache_max_document_chars=s.graphql_document_cache_max_document_chars,
            document_cache_max_total_chars=s.graphql_document_cache_max_total_chars,
            persisted_queries=s.graphql_persisted_queries,
            persisted_query_ttl_s=s.graphql_persisted_query_ttl_s,
            allowlist=allowlist,
        )
        return create_app(
            self.services,
            self.hub,
            self.sio,
            readiness=self.readiness(),
            lifespan=lifespan,
            graphql=graphql,
            redis=self.redis,
            debug=False,
        )
