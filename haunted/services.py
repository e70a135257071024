"""Every service, declared once: the composition root, the CLI and the tests read `SPECS`.

A `ServiceSpec` says how a service's facades are built (from the settings and the
shared resources), which handlers its consumer group runs, what `haunted replay`
can rebuild, its Alembic branch and its GraphQL module. Adding a service is its
own files (services/<name>/, schemas/<name>.py, its migration, gateway/resolvers/<name>.py,
gateway/schema/<name>.graphql) plus its entry here: `haunted new service NAME` writes them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from events.db import Database
from events.handlers import BatchHandlers, Handlers
from events.replay import ReplayReport, ReplayTarget, rebuild_in_place
from gateway import Services
from haunted.backup import shred_key
from haunted.keyring import load_pii_keys, load_previous_public_keys
from haunted.keys import load_signing_key
from haunted.settings import Settings
from schemas import UserErased
from services import analytics, audit, auth, billing, flags, llm, notifications, webhooks
from services.exports import DataExports, ExportLinks, Section

Facades = Mapping[str, Any]  # facade name (its key in gateway.Services) -> facade

ServiceReport = dict[str, int]  # what a service did of an erase: a count per kind of row
Registry = Handlers | BatchHandlers  # one consumer group's handlers
# Replays retained topics from a time into a target (the composition root's replay).
Replayer = Callable[[ReplayTarget, datetime], Awaitable[ReplayReport]]


class ProcessTask(Protocol):
    """A service's background loop in its worker process: run until stopped."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str  # also its `haunted worker` name and its events' `source`
    # The facades it offers the gateway, by name (its key in gateway.Services), built from the
    # settings and the resources every service shares (built once by the composition root).
    build: Callable[[Settings, Database, Redis], Facades]
    # Its consumer groups' handlers (one registry per group), given its own built facades;
    # None: it consumes nothing.
    handlers: Callable[[Facades], Registry | tuple[Registry, ...]] | None = None
    # What `haunted replay NAME` rebuilds: its consumer's name (or a part's) -> target.
    replay: Callable[[], Mapping[str, ReplayTarget]] = field(default=lambda: {})
    migrations: str | None = None  # its Alembic branch label; None: the foundation revision
    # Its GraphQL: gateway/schema/<graphql>.graphql and the resolvers that bind it,
    # gateway/resolvers/<graphql>.py's bindables(services, hub); None: it has none.
    graphql: str | None = None
    # Its background loop where its consumer runs, given its facades and a way to replay
    # retained topics (the composition root starts and stops it); None: it has none.
    task: Callable[[Settings, Facades, Replayer], ProcessTask] | None = None
    # Its parts of a user's data export (section name -> reader), given its built facades;
    # each reader is a facade method that checks its caller. None: it holds nothing personal.
    export: Callable[[Facades], Mapping[str, Section]] | None = None
    # What it drops or anonymises of an erased user, in the caller's transaction: the same
    # function its user.erased handler runs (`haunted privacy erase` reports each). None:
    # it keeps nothing per user.
    forget: Callable[[AsyncSession, UserErased], Awaitable[ServiceReport]] | None = None

    def registries(self, facades: Facades) -> tuple[Registry, ...]:
        """Its consumer groups' handler registries (none when it consumes nothing)."""
        if self.handlers is None:
            return ()
        built = self.handlers(facades)
        return built if isinstance(built, tuple) else (built,)


def build_auth(settings: Settings, db: Database, redis: Redis) -> Facades:
    ring, lookup_key = load_pii_keys(settings)
    sessions = auth.SessionStore(
        redis, settings.auth.session_ttl_s, settings.auth.permissions_cache_ttl_s
    )
    accounts = auth.Accounts(db, auth.PiiCipher(ring, lookup_key), sessions)
    tokens = auth.TokenIssuer(
        load_signing_key(settings),
        verify_only=load_previous_public_keys(settings),
        issuer=settings.auth.jwt_issuer,
        audience=settings.auth.jwt_audience,
        ttl=timedelta(seconds=settings.auth.access_token_ttl_s),
    )
    api_keys = auth.ApiKeyService(accounts, redis)
    service = auth.AuthService(
        accounts,
        tokens,
        auth.PasswordHasher(settings.auth.bcrypt_rounds),
        api_keys,
        auth.AuthRateLimiter(
            settings.redis_url,
            per_ip=settings.auth.rate_limit_per_ip,
            per_account=settings.auth.rate_limit_per_account,
        ),
        auth.AuthPolicy(
            refresh_ttl=timedelta(seconds=settings.auth.refresh_token_ttl_s),
            lockout_threshold=settings.auth.lockout_threshold,
            account_lockout_threshold=settings.auth.lockout_account_threshold,
            require_email_verification=(
                settings.env == "prod"
                if settings.auth.require_email_verification is None
                else settings.auth.require_email_verification
            ),
            lockout_duration=timedelta(seconds=settings.auth.lockout_duration_s),
        ),
        shred_backup_keys=lambda user_id: shred_key(settings.backup_dir, user_id),
    )
    teams = auth.TeamService(accounts, timedelta(seconds=settings.auth.invite_ttl_s))
    return {"auth": service, "teams": teams, "api_keys": api_keys}


def build_billing(settings: Settings, db: Database, redis: Redis) -> billing.BillingService:
    config = billing.BillingConfig(
        env=settings.env,
        public_url=settings.billing.public_url or f"http://{settings.host}:{settings.port}",
        return_url=f"{settings.web_url}/app/billing",
        webhook_secret=(
            settings.billing.stripe_webhook_secret.get_secret_value()
            if settings.billing.stripe_webhook_secret
            else None
        ),
        webhook_tolerance_s=settings.billing.stripe_webhook_tolerance_s,
        webhook_max_body_bytes=settings.billing.stripe_webhook_max_body_bytes,
        local_checkout=settings.billing.local_checkout,
    )
    stripe = (
        billing.StripeGateway(
            settings.billing.stripe_api_key.get_secret_value(),
            api_base=settings.billing.stripe_api_base,
            timeout_s=settings.billing.stripe_timeout_s,
        )
        if settings.billing.stripe_api_key
        else None
    )
    plans = billing.load_plans(settings.billing.plans_file)
    return billing.BillingService(db, plans, config, stripe)


def build_llm(settings: Settings, db: Database, redis: Redis) -> llm.LlmService:
    """The LLM gateway: prompt files checked now (a broken one stops the start)."""
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    provider = llm.build_provider(
        api_key=api_key,
        base_url=settings.openai_base_url,
        timeout_s=settings.llm.timeout_s,
        connect_timeout_s=settings.llm.connect_timeout_s,
    )
    offline = api_key is None and settings.openai_base_url is None
    reload = settings.llm.prompts_reload
    plans = billing.load_plans(settings.billing.plans_file)  # plan limits: the plans file's only
    config = llm.LlmConfig(
        default_plan_id=plans.default.id,
        plans={
            plan.id: llm.PlanQuota(
                tokens_per_period=plan.entitlements.llm_tokens_per_month,
                requests_per_minute=plan.entitlements.llm_requests_per_minute,
                tokens_per_minute=plan.entitlements.llm_tokens_per_minute,
            )
            for plan in plans
        },
        prices=settings.llm.prices,
        max_retries=settings.llm.max_retries,
        retry_backoff_s=settings.llm.retry_backoff_s,
        retry_max_wait_s=settings.llm.retry_max_wait_s,
        reload_prompts=settings.env == "dev" if reload is None else reload,
        force_model=llm.OFFLINE_MODEL if offline else None,
    )
    prompts = llm.PromptLibrary(settings.llm.prompts_dir)
    return llm.LlmService(db, redis, prompts, provider, config)


def build_notifications(
    settings: Settings, db: Database, redis: Redis
) -> notifications.NotificationsService:
    return notifications.NotificationsService(db, email=build_email_channel(settings))


def build_email_channel(settings: Settings) -> notifications.EmailChannel | None:
    """Mail through HAUNTED_SMTP_HOST, or in dev through the mail catcher `haunted dev`
    runs; None (no email consumer) when neither is there."""
    if settings.smtp_host is not None:
        smtp = notifications.SmtpConfig(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            username=settings.smtp_username,
            password=(
                settings.smtp_password.get_secret_value() if settings.smtp_password else None
            ),
            starttls=settings.smtp_starttls,
            timeout_s=settings.smtp_timeout_s,
        )
    elif settings.env == "dev":
        smtp = notifications.SmtpConfig(
            "127.0.0.1", settings.mail_catcher_port, settings.smtp_from, starttls=False
        )
    else:
        if settings.env == "prod":
            structlog.get_logger(__name__).warning(
                "HAUNTED_SMTP_HOST is unset: no mail is sent (verification, reset, invites, "
                "security notices)"
            )
        return None
    # Addresses come sealed with their user's data key (auth's key store, same database).
    unseal = auth.EventUnsealer(auth.PiiCipher(*load_pii_keys(settings)))
    links = settings.mail_link_base_url or f"http://{settings.host}:{settings.web_port}"
    return notifications.EmailChannel(notifications.SmtpMailer(smtp), unseal, links)


def build_analytics(settings: Settings, db: Database, redis: Redis) -> analytics.AnalyticsService:
    return analytics.AnalyticsService(db, redis, settings.analytics, redis_url=settings.redis_url)


def build_flags(settings: Settings, db: Database, redis: Redis) -> flags.FlagsService:
    """Flags from the Unleash server when one is configured, else from the flags file."""
    source: flags.FileSource | flags.UnleashServerSource = flags.FileSource(settings.flags.file)
    if settings.unleash_url:
        token = settings.unleash_api_token.get_secret_value() if settings.unleash_api_token else ""
        source = flags.UnleashServerSource(
            settings.unleash_url, token, settings.flags.app_name, settings.flags.fetch_timeout_s
        )
    config = flags.FlagsConfig(
        app_name=settings.flags.app_name,
        environment=settings.env,
        refresh_interval_s=settings.flags.refresh_interval_s,
        flush_interval_s=settings.flags.flush_interval_s,
        plan_cache_ttl_s=settings.flags.plan_cache_ttl_s,
        default_plan=settings.flags.default_plan,
        required_permissions=settings.flags.required_permissions,
    )
    return flags.FlagsService(db, redis, source, config)


def build_webhooks(settings: Settings, db: Database, redis: Redis) -> webhooks.WebhooksService:
    """Signing secrets are sealed with the PII ring (they must stay usable for signing)."""
    ring, _ = load_pii_keys(settings)
    section, prod = settings.webhooks, settings.env == "prod"
    policy = webhooks.UrlPolicy(
        require_https=prod if section.require_https is None else section.require_https,
        allow_private=(
            not prod if section.allow_private_addresses is None else section.allow_private_addresses
        ),
    )
    config = webhooks.WebhooksConfig(
        policy=policy,
        disable_after=timedelta(seconds=section.disable_after_s),
        secret_overlap=timedelta(seconds=section.secret_overlap_s),
        timeout_s=section.timeout_s,
        max_response_bytes=section.max_response_bytes,
        max_in_flight_per_endpoint=section.max_in_flight_per_endpoint,
        max_in_flight=section.max_in_flight,
        poll_interval_s=section.poll_interval_s,
        max_endpoints_per_team=section.max_endpoints_per_team,
    )
    return webhooks.WebhooksService(db, webhooks.SecretBox(ring), config)


def webhooks_worker(
    settings: Settings, facades: Facades, replayer: Replayer
) -> webhooks.DeliveryWorker:
    service: webhooks.WebhooksService = facades["webhooks"]
    http = webhooks.HttpDelivery(
        service.config.policy,
        timeout_s=service.config.timeout_s,
        max_response_bytes=service.config.max_response_bytes,
    )
    return webhooks.DeliveryWorker(service.db, service, http, replayer)


SPECS: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "auth",
        build_auth,
        # Deletes ended sessions from Redis once more, through the outbox: see handlers.py.
        export=lambda facades: {
            "account": facades["auth"].export_account,
            "sessions": facades["auth"].export_sessions,
            "teams": facades["teams"].export_teams,
            "api_keys": facades["api_keys"].export_api_keys,
        },
        handlers=lambda facades: auth.build_handlers(
            facades["auth"].session_store, facades["auth"].erasures
        ),
        migrations="auth",
        graphql="auth",
    ),
    ServiceSpec(
        "billing",
        lambda *resources: {"billing": build_billing(*resources)},
        export=lambda facades: {"billing": facades["billing"].export_billing},
        migrations="billing",
        graphql="billing",
    ),
    ServiceSpec(
        "llm",
        lambda *resources: {"llm": build_llm(*resources)},
        handlers=lambda _: llm.HANDLERS,
        # In place: a paying team never falls to the default plan mid-replay.
        replay=lambda: {"llm": llm.HANDLERS.replay_target(rebuild=rebuild_in_place)},
        export=lambda facades: {"llm_plans": facades["llm"].export_plans},
        migrations="llm",
        graphql="llm",
    ),
    ServiceSpec(
        "notifications",
        lambda *resources: {"notifications": build_notifications(*resources)},
        # The inboxes, and the email channel's own group (an SMTP outage holds back mail only).
        handlers=lambda facades: (
            (notifications.HANDLERS,)
            + ((facades["notifications"].email.handlers,) if facades["notifications"].email else ())
        ),
        replay=lambda: {
            "notifications": notifications.HANDLERS.replay_target(),
            # Only the membership read model: a rebuild must not notify anyone twice.
            # Not a consumer group of its own: after a restore, "notifications" covers it.
            # In place: live notifications keep their recipients meanwhile.
            "notifications.memberships": replace(
                notifications.MEMBERSHIPS.replay_target(rebuild=rebuild_in_place),
                live=False,
            ),
        },
        export=lambda facades: {"notifications": facades["notifications"].export_notifications},
        forget=lambda session, erased: notifications.forget_user(session, erased.user_id),
        migrations="notifications",
        graphql="notifications",
    ),
    ServiceSpec(
        "analytics",
        lambda *resources: {"analytics": build_analytics(*resources)},
        handlers=lambda _: analytics.HANDLERS,
        forget=lambda session, erased: analytics.forget_user(
            session, erased.user_id, erased.anonymous_id
        ),
        replay=lambda: {
            "analytics": analytics.HANDLERS.replay_target(rebuild=analytics.clear_store)
        },
        export=lambda facades: {
            "tracked_events": facades["analytics"].export_events,
            "llm_usage": facades["analytics"].export_llm_usage,
        },
        migrations="analytics",
        graphql="analytics",
    ),
    ServiceSpec(
        "flags",
        lambda *resources: {"flags": build_flags(*resources)},
        handlers=lambda facades: flags.build_handlers(facades["flags"].forget_plan),
        # Replayed without a facade: its plan cache expires on its own (plan_cache_ttl_s).
        replay=lambda: {"flags": flags.build_handlers().replay_target(rebuild=flags.clear_store)},
        migrations="flags",
        graphql="flags",
    ),
    ServiceSpec(
        "audit",
        lambda settings, db, redis: {"audit": audit.AuditService(db)},
        handlers=lambda _: audit.HANDLERS,
        forget=lambda session, erased: audit.forget_user(session, erased.user_id),
        replay=lambda: {"audit": audit.HANDLERS.replay_target(rebuild=audit.clear_store)},
        export=lambda facades: {"audit_entries": facades["audit"].export_entries},
        migrations="audit",
        graphql="audit",
    ),
    ServiceSpec(
        "webhooks",
        lambda *resources: {"webhooks": build_webhooks(*resources)},
        # The facade's clock, read at each event: tests move it.
        handlers=lambda facades: webhooks.build_handlers(lambda: facades["webhooks"].clock()),
        # Fed again after a restore: what it records is keyed by (event, endpoint), and
        # an endpoint still gets only what happened after its creation.
        replay=lambda: {
            "webhooks": webhooks.build_handlers(lambda: datetime.now(UTC)).replay_target()
        },
        task=webhooks_worker,
        export=lambda facades: {"webhook_endpoints": facades["webhooks"].export_endpoints},
        migrations="webhooks",
        graphql="webhooks",
    ),
)

NAMES: tuple[str, ...] = tuple(spec.name for spec in SPECS)


def spec(name: str) -> ServiceSpec:
    return next(each for each in SPECS if each.name == name)


def build_services(settings: Settings, db: Database, redis: Redis) -> Services:
    """Every facade, built once with its dependencies, and the GraphQL modules that
    bind them, by each service's declaration."""
    built = (each.build(settings, db, redis) for each in SPECS)
    facades = {name: facade for each in built for name, facade in each.items()}
    # The data export reads every service's part: built after them, bound beside them.
    facades["exports"] = build_exports(settings, redis, facades)
    return Services(facades, graphql=[*(each.graphql for each in SPECS if each.graphql), "exports"])


def facades_of(services: Services) -> Facades:
    return dict(services)


def replay_targets() -> dict[str, ReplayTarget]:
    """What `haunted replay NAME` can replay: each service's consumer, topics and handler."""
    return {name: target for each in SPECS for name, target in each.replay().items()}


def export_sections(facades: Facades) -> list[tuple[str, Section]]:
    """The parts of a user's data export, in the order of SPECS: each service declares
    its own (`ServiceSpec.export`), so a new service adds its part in its own package."""
    sections: list[tuple[str, Section]] = []
    for each in SPECS:
        if each.export is not None:
            sections.extend(each.export(facades).items())
    names = [name for name, _ in sections]
    if len(set(names)) != len(names):
        raise ValueError(f"two services export a section of the same name: {sorted(names)}")
    return sections


def export_link_key(settings: Settings) -> bytes:
    """The links' HMAC key, derived from the PII lookup key (a secret every deployment
    already keeps), under its own label: it signs nothing else."""
    _, lookup_key = load_pii_keys(settings)
    return hmac.new(lookup_key, b"haunted/export-links/v1", hashlib.sha256).digest()


def build_exports(settings: Settings, redis: Redis, facades: Facades) -> DataExports:
    """The data export facade over every service's part (built after the services)."""
    return DataExports(
        export_sections(facades),
        facades["auth"].export_subject,
        redis,
        ExportLinks(export_link_key(settings)),
        ttl=timedelta(seconds=settings.export.link_ttl_s),
        rate_limit=settings.export.rate_limit,
        redis_url=settings.redis_url,
        announce=facades["auth"].record_data_export,
        session_check=facades["auth"].reauthorize,
    )
