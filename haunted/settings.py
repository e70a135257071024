"""The one settings object. Nothing else in the project reads os.environ."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from events.broker import KafkaSettings
from events.consumer import RetryPolicy
from events.outbox import OutboxRelay
from gateway.app import GraphQLConfig
from gateway.push import RealtimeLimits
from services.analytics import AnalyticsLimits
from services.auth import AuthPolicy, PasswordHasher, SessionStore, TeamService
from services.billing import BillingConfig, StripeGateway

EMBEDDED = "embedded"
MEMORY = "memory://"
ROOT = Path(__file__).resolve().parents[1]


def _section(prefix: str) -> SettingsConfigDict:
    """A service's settings, read from the flat `HAUNTED_<SERVICE>_<FIELD>` names; a
    field that had an older name (`HAUNTED_JWT_ISSUER`) keeps it as its alias."""
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", extra="ignore", populate_by_name=True
    )


def _default(target: Callable[..., object], name: str) -> Any:
    """The default the code that takes a setting already has: written once, there."""
    return inspect.signature(target).parameters[name].default


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())


class AnalyticsSettings(BaseSettings, AnalyticsLimits):
    """HAUNTED_ANALYTICS_*: the facade takes this section as its limits."""

    model_config = _section("HAUNTED_ANALYTICS_")


class FlagsSettings(BaseSettings):
    """HAUNTED_FLAGS_*."""

    model_config = _section("HAUNTED_FLAGS_")

    file: Path = Field(
        ROOT / "infra" / "flags.json",
        description=(
            "Flag definitions (Unleash's format) when no server is set; reloaded on change."
        ),
        examples=["/app/infra/flags.json"],
    )
    app_name: str = Field("haunted", description="App name given to Unleash.")
    refresh_interval_s: float = Field(15.0, gt=0, description="How often definitions are re-read.")
    flush_interval_s: float = Field(
        5.0,
        gt=0,
        description="How often folded evaluation counts are published as `flag.evaluated`.",
    )
    fetch_timeout_s: float = Field(
        5.0,
        gt=0,
        description="Timeout of a fetch from the Unleash server.",
    )
    plan_cache_ttl_s: float = Field(
        30.0,
        ge=0,
        description="How long a team's plan stays cached in the process for evaluation contexts.",
    )
    default_plan: str = Field("free", description="Plan of teams without a subscription.")
    required_permissions: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Flag -> permission needed to see it, for flags on an Unleash server (the file declares"
            " its own)."
        ),
        examples=['{"beta-search": "analytics:read"}'],
    )


class LlmSettings(BaseSettings):
    """HAUNTED_LLM_*. Plan limits are the plans file's entitlements, not settings."""

    model_config = _section("HAUNTED_LLM_")

    # Prompt files; unset: prompts/ at the repository root. Reloaded on change when
    # prompts_reload is on (unset: on in dev).
    prompts_dir: Path | None = Field(
        None,
        description="The prompt files. Unset: `prompts/` of this checkout.",
        examples=["/app/prompts"],
    )
    prompts_reload: bool | None = Field(
        None,
        description="Reload prompt files when they change. Unset: on in `dev` only.",
        examples=["false"],
    )
    timeout_s: float = Field(60.0, gt=0, description="Timeout of one model call.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Connect timeout of one model call.")
    # Attempts per model after the first, on 429/5xx/timeouts; then the fallback models.
    max_retries: int = Field(
        2,
        ge=0,
        description=(
            "Attempts per model after the first, on 429, 5xx and timeouts; then the prompt's "
            "fallback models."
        ),
    )
    retry_backoff_s: float = Field(0.5, ge=0, description="Base of the backoff between attempts.")
    retry_max_wait_s: float = Field(20.0, ge=0, description="Longest wait between attempts.")
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "gpt-4o-mini": (0.15, 0.60),
            "gpt-4.1-mini": (0.40, 1.60),
            "gpt-4o": (2.50, 10.00),
            "offline-echo": (0.0, 0.0),
        },
        description=(
            "USD per million tokens, `[prompt, completion]`, per model; unknown models cost 0."
        ),
        examples=['{"gpt-4o-mini": [0.15, 0.6]}'],
    )


class ExportSettings(BaseSettings):
    """HAUNTED_EXPORT_*: a user's data export ([privacy](/docs/privacy#export))."""

    model_config = _section("HAUNTED_EXPORT_")

    link_ttl_s: int = Field(
        15 * 60,
        ge=60,
        le=24 * 3600,
        description="How long an `exportMyData` download link works.",
        examples=["900"],
    )
    rate_limit: str = Field(
        "5/hour",
        description="`exportMyData` calls per user (`limits` notation), counted in Redis.",
        examples=["5/hour"],
    )


class WebhooksSettings(BaseSettings):
    """HAUNTED_WEBHOOKS_*: customer webhooks (docs/webhooks.md)."""

    model_config = _section("HAUNTED_WEBHOOKS_")

    require_https: bool | None = Field(
        None,
        description=(
            "Endpoint URLs must be https ([webhooks](/docs/webhooks)). Unset: on in `prod` only."
        ),
        examples=["true"],
    )
    allow_private_addresses: bool | None = Field(
        None,
        description=(
            "Endpoints on private, loopback or link-local addresses, checked at creation and at "
            "every delivery. Unset: allowed except in `prod`."
        ),
        examples=["false"],
    )
    timeout_s: float = Field(15.0, gt=0, description="A 2xx within this is a delivered webhook.")
    max_response_bytes: int = Field(
        64 * 1024,
        ge=0,
        description=("Most of an endpoint's answer read."),
    )
    max_in_flight_per_endpoint: int = Field(
        4,
        ge=1,
        description=("Requests one endpoint has at once: a slow one holds only these."),
    )
    max_in_flight: int = Field(200, ge=1, description="Requests one worker process has at once.")
    poll_interval_s: float = Field(
        0.5,
        gt=0,
        description=("How often the delivery worker looks for due deliveries."),
    )
    secret_overlap_s: int = Field(
        24 * 3600,
        ge=0,
        description=("After a rotation, the old secret signs beside the new one this long."),
    )
    disable_after_s: int = Field(
        5 * 24 * 3600,
        ge=60,
        description=(
            "An endpoint failing with no success this long is disabled, and its team notified."
        ),
    )
    max_endpoints_per_team: int = Field(20, ge=1, description="Endpoints one team may register.")


class BusSettings(BaseSettings):
    """HAUNTED_KAFKA_* and the bus's older names: the broker, the outbox relay, the consumers."""

    model_config = _section("HAUNTED_KAFKA_")

    bootstrap: str = Field(
        EMBEDDED,
        description="`embedded` makes `haunted dev` start Tansu.",
        examples=["kafka-1:9092,kafka-2:9092"],
    )
    embedded_port: int = Field(
        9092,
        ge=1,
        le=65535,
        description="Port of the embedded broker.",
        validation_alias="HAUNTED_EMBEDDED_KAFKA_PORT",
    )
    partitions: int = Field(
        _default(KafkaSettings, "partitions"),
        ge=1,
        description="Partitions of topics Haunted creates.",
        examples=["12"],
    )
    replication_factor: int = Field(
        _default(KafkaSettings, "replication_factor"),
        ge=1,
        description="Replication of topics Haunted creates.",
        examples=["3"],
    )
    # The embedded broker joins a group in about session_timeout/2.
    session_timeout_ms: int = Field(
        _default(KafkaSettings, "session_timeout_ms"),
        ge=100,
        description=(
            "Consumer group session timeout. The embedded broker takes about half of it to join a "
            "group."
        ),
        examples=["10000"],
    )
    heartbeat_interval_ms: int = Field(
        _default(KafkaSettings, "heartbeat_interval_ms"),
        ge=10,
        description="Consumer heartbeat interval.",
        examples=["3000"],
    )
    fetch_max_wait_ms: int = Field(
        _default(KafkaSettings, "fetch_max_wait_ms"),
        ge=1,
        le=10_000,
        description=(
            "Longest a fetch waits for records. It bounds the push latency of the fan-out consumer,"
            " whose partitions are often idle."
        ),
    )
    # Kafka's idempotent producer for the outbox relay (on in production; the
    # embedded broker does not support it, and the relay keeps key order without it).
    idempotence: bool = Field(
        _default(KafkaSettings, "idempotence"),
        description=(
            "The outbox relay's producer is idempotent (Kafka drops duplicates, refuses "
            "out-of-sequence batches); unsupported by the embedded broker. Key order holds either "
            "way."
        ),
        examples=["true"],
    )
    # Retention of the <topic>.dlq topics (set when they are created): time to look
    # at dead letters (`haunted dlq list`) and re-drive them.
    dlq_retention_s: int = Field(
        _default(KafkaSettings, "dlq_retention_ms") // 1000,
        ge=3600,
        description=(
            "Retention of the `<topic>.dlq` topics, set when they are created: time to list and "
            "re-drive dead letters."
        ),
        validation_alias="HAUNTED_DLQ_RETENTION_S",
    )
    outbox_batch_size: int = Field(
        _default(OutboxRelay, "batch_size"),
        ge=1,
        le=10_000,
        description=(
            "Events the relay publishes per batch: one read, one produce round trip and "
            "one update of the outbox per batch (500 ran at 0.45x a raw producer, "
            "2,000 at 0.8x; bench/README.md)."
        ),
        validation_alias="HAUNTED_OUTBOX_BATCH_SIZE",
    )
    outbox_poll_interval_s: float = Field(
        _default(OutboxRelay, "poll_interval_s"),
        gt=0,
        description="The relay's fallback poll interval. After a commit it wakes at once.",
        validation_alias="HAUNTED_OUTBOX_POLL_INTERVAL_S",
    )
    outbox_retention_s: float = Field(
        _default(OutboxRelay, "retention_s"),
        ge=0,
        description="How long sent outbox rows are kept before purging.",
        examples=["86400"],
        validation_alias="HAUNTED_OUTBOX_RETENTION_S",
    )
    # How long consumers remember which events they handled (processed_events): at
    # least the topics' retention plus the longest replay window, so that no
    # redelivery or replay can find an event forgotten. Purged by the relay.
    processed_events_retention_s: float = Field(
        _default(OutboxRelay, "processed_retention_s"),
        ge=3600,
        description=(
            "How long consumers remember handled event ids (`processed_events`, purged by the "
            "relay); keep it at least the topics' retention plus the longest replay window."
        ),
        validation_alias="HAUNTED_PROCESSED_EVENTS_RETENTION_S",
    )
    # Attempts before a record whose handling fails for a reason of its own is
    # dead-lettered. An outage (database, Redis, broker) is waited out without limit,
    # the wait doubling from consumer_retry_backoff_s up to consumer_max_backoff_s.
    consumer_max_attempts: int = Field(
        _default(RetryPolicy, "max_attempts"),
        ge=1,
        description=(
            "Attempts per event that fails for a reason of its own (undecodable, invalid, refused "
            "by its handler) before it goes to the dead-letter topic; an outage is waited out "
            "without limit."
        ),
        examples=["5"],
        validation_alias="HAUNTED_CONSUMER_MAX_ATTEMPTS",
    )
    consumer_retry_backoff_s: float = Field(
        _default(RetryPolicy, "backoff_s"),
        ge=0,
        description="Base of the exponential backoff between attempts (capped at 5 s).",
        examples=["0.5"],
        validation_alias="HAUNTED_CONSUMER_RETRY_BACKOFF_S",
    )
    consumer_max_backoff_s: float = Field(
        _default(RetryPolicy, "max_backoff_s"),
        gt=0,
        description=(
            "Longest wait while a dependency (database, Redis, broker) is away; the group's "
            "partitions stay paused meanwhile."
        ),
        validation_alias="HAUNTED_CONSUMER_MAX_BACKOFF_S",
    )
    consumer_handler_timeout_s: float = Field(
        _default(RetryPolicy, "handler_timeout_s"),
        gt=0,
        description=(
            "A handler (or batch write) running longer counts as an outage and is retried, never "
            "dead-lettered."
        ),
        validation_alias="HAUNTED_CONSUMER_HANDLER_TIMEOUT_S",
    )

    @property
    def uses_embedded(self) -> bool:
        return self.bootstrap == EMBEDDED

    @property
    def servers(self) -> str:
        """The bootstrap servers: the embedded broker's address, or HAUNTED_KAFKA_BOOTSTRAP."""
        if self.uses_embedded:
            return f"127.0.0.1:{self.embedded_port}"
        return self.bootstrap


class AuthSettings(BaseSettings):
    """HAUNTED_AUTH_* and auth's older names (HAUNTED_JWT_*, HAUNTED_PII_*, ...)."""

    model_config = _section("HAUNTED_AUTH_")

    jwt_private_key_file: Path | None = Field(
        None,
        description=(
            "RS256 signing key (PEM). Set together with the public key. Unset: generated into "
            "`.haunted/keys/jwt-private.pem`."
        ),
        examples=["/run/secrets/jwt-private.pem"],
        validation_alias="HAUNTED_JWT_PRIVATE_KEY_FILE",
    )
    jwt_public_key_file: Path | None = Field(
        None,
        description=(
            "The matching public key, served at `/.well-known/jwks.json`. Unset: generated into "
            "`.haunted/keys/jwt-public.pem`."
        ),
        examples=["/run/secrets/jwt-public.pem"],
        validation_alias="HAUNTED_JWT_PUBLIC_KEY_FILE",
    )
    jwt_previous_public_key_files: list[Path] = Field(
        default_factory=list,
        description="Retired public keys that still verify tokens (a JSON list), for key rotation.",
        examples=['["/run/secrets/jwt-public-old.pem"]'],
        validation_alias="HAUNTED_JWT_PREVIOUS_PUBLIC_KEY_FILES",
    )
    jwt_issuer: str = Field(
        "haunted",
        description="`iss` of access tokens.",
        examples=["https://api.example.com"],
        validation_alias="HAUNTED_JWT_ISSUER",
    )
    jwt_audience: str = Field(
        "haunted",
        description="`aud` of access tokens.",
        examples=["example-app"],
        validation_alias="HAUNTED_JWT_AUDIENCE",
    )
    access_token_ttl_s: int = Field(
        24 * 3600,
        ge=60,
        description="Access token lifetime.",
        examples=["900"],
        validation_alias="HAUNTED_ACCESS_TOKEN_TTL_S",
    )
    refresh_token_ttl_s: int = Field(
        _seconds(_default(AuthPolicy, "refresh_ttl")),
        ge=60,
        description="Refresh token lifetime.",
        examples=["2592000"],
        validation_alias="HAUNTED_REFRESH_TOKEN_TTL_S",
    )
    session_ttl_s: int = Field(
        24 * 3600,
        ge=60,
        description=(
            "Session lifetime in Redis. Each authenticated request extends it by this much "
            "(with the session copy on: at most once a minute per gateway)."
        ),
        examples=["604800"],
        validation_alias="HAUNTED_SESSION_TTL_S",
    )
    permissions_cache_ttl_s: int = Field(
        _default(SessionStore, "roles_ttl_s"),
        ge=1,
        description=(
            "How long a user's team roles stay cached in Redis (membership changes clear the cache "
            "at once)."
        ),
        validation_alias="HAUNTED_PERMISSIONS_CACHE_TTL_S",
    )
    session_local_copy: bool = Field(
        True,
        description=(
            "Each gateway keeps a copy of the sessions it serves, kept right by Redis's "
            "client-side caching (CLIENT TRACKING): an authenticated request then needs no "
            "Redis round trip. Trusted only while Redis is heard from (docs/security.md); "
            "off by itself on a store without client tracking (the in-memory default)."
        ),
    )
    bcrypt_rounds: int = Field(
        _default(PasswordHasher, "rounds"),
        ge=4,
        le=16,
        description="bcrypt cost factor.",
        validation_alias="HAUNTED_BCRYPT_ROUNDS",
    )
    # PII at rest: "kid:base64-32-bytes,..." (first one encrypts) and the HMAC lookup key.
    # Unset in dev: generated once into data_dir/keys.
    pii_encryption_keys: SecretStr | None = Field(
        None,
        description=(
            "AES-GCM key ring for emails at rest. The first key encrypts, and every key decrypts. "
            "Unset: generated into `.haunted/pii-keys.json`."
        ),
        examples=["k2:<base64 32 bytes>,k1:<base64 32 bytes>"],
        validation_alias="HAUNTED_PII_ENCRYPTION_KEYS",
    )
    pii_lookup_key: SecretStr | None = Field(
        None,
        description=(
            "HMAC key of the email lookup hash. Never rotate it. Unset: generated with the ring."
        ),
        examples=["<base64, at least 32 bytes>"],
        validation_alias="HAUNTED_PII_LOOKUP_KEY",
    )
    pii_keys_file: Path | None = Field(
        None,
        description=(
            'The PII keys from a JSON file `{"ring": ..., "lookup": ...}` (what `haunted keys init`'
            " writes) instead of `HAUNTED_PII_ENCRYPTION_KEYS` and `HAUNTED_PII_LOOKUP_KEY`; give "
            "one or the other."
        ),
        examples=["/var/lib/haunted-keys/pii-keys.json"],
        validation_alias="HAUNTED_PII_KEYS_FILE",
    )
    invite_ttl_s: int = Field(
        _seconds(_default(TeamService, "invite_ttl")),
        ge=60,
        description="How long a team invitation can be accepted.",
        examples=["604800"],
        validation_alias="HAUNTED_INVITE_TTL_S",
    )
    lockout_threshold: int = Field(
        _default(AuthPolicy, "lockout_threshold"),
        ge=1,
        description=(
            "Failed logins from one client that lock the account for that client (see the security "
            "model)."
        ),
        validation_alias="HAUNTED_LOCKOUT_THRESHOLD",
    )
    lockout_account_threshold: int = Field(
        _default(AuthPolicy, "account_lockout_threshold"),
        ge=1,
        description="Failed logins from all clients that lock the account everywhere.",
        validation_alias="HAUNTED_LOCKOUT_ACCOUNT_THRESHOLD",
    )
    lockout_duration_s: int = Field(
        _seconds(_default(AuthPolicy, "lockout_duration")),
        ge=1,
        description="How long a locked account refuses logins.",
        validation_alias="HAUNTED_LOCKOUT_DURATION_S",
    )
    require_email_verification: bool | None = Field(
        None,
        description=(
            "`register` is refused; accounts come from `signUp` + `verifyEmail`, and registration "
            "reveals nothing. Unset: on in `prod` only."
        ),
        validation_alias="HAUNTED_REQUIRE_EMAIL_VERIFICATION",
    )
    rate_limit_per_ip: str = Field(
        "60/minute",
        description=(
            "Auth attempts per client IP, shared by all gateways through Redis (`limits` notation)."
        ),
    )
    rate_limit_per_account: str = Field("10/minute", description="Auth attempts per account.")


class BillingSettings(BaseSettings):
    """HAUNTED_BILLING_* and billing's older names (HAUNTED_STRIPE_*, HAUNTED_PLANS_FILE)."""

    model_config = _section("HAUNTED_BILLING_")

    plans_file: Path | None = Field(
        None,
        description=(
            "The plans, their prices and entitlements. Unset: `infra/plans.yaml` of this checkout."
        ),
        examples=["/app/infra/plans.yaml"],
        validation_alias="HAUNTED_PLANS_FILE",
    )
    stripe_api_key: SecretStr | None = Field(
        None,
        description=(
            "Stripe secret key. In `prod`, requires the webhook secret. Unset: the offline test "
            "checkout (never in `prod`)."
        ),
        examples=["sk_live_..."],
        validation_alias="HAUNTED_STRIPE_API_KEY",
    )
    stripe_webhook_secret: SecretStr | None = Field(
        None,
        description=(
            "Signing secret of the `POST /webhooks/stripe` endpoint. Unset in dev: a built-in "
            "secret for the offline checkout; unset with Stripe on: every webhook is refused with "
            "400."
        ),
        examples=["whsec_..."],
        validation_alias="HAUNTED_STRIPE_WEBHOOK_SECRET",
    )
    stripe_api_base: str | None = Field(
        None,
        description="Another Stripe API base (a local fake in tests). Unset: Stripe's.",
        validation_alias="HAUNTED_STRIPE_API_BASE",
    )
    stripe_webhook_tolerance_s: int = Field(
        _default(BillingConfig, "webhook_tolerance_s"),
        ge=1,
        description="Oldest signature timestamp accepted.",
        validation_alias="HAUNTED_STRIPE_WEBHOOK_TOLERANCE_S",
    )
    stripe_webhook_max_body_bytes: int = Field(
        _default(BillingConfig, "webhook_max_body_bytes"),
        ge=1024,
        description="Larger webhook bodies get 400.",
        validation_alias="HAUNTED_STRIPE_WEBHOOK_MAX_BODY_BYTES",
    )
    stripe_timeout_s: float = Field(
        _default(StripeGateway, "timeout_s"),
        gt=0,
        description="Timeout of calls to Stripe's API.",
        validation_alias="HAUNTED_STRIPE_TIMEOUT_S",
    )
    # Where buyers come back to (checkout success, portal return, the local test
    # checkout). Unset: http://HOST:PORT.
    public_url: str | None = Field(
        None,
        description=(
            "Where buyers come back to after checkout and the billing portal. Unset: "
            "`http://HOST:PORT`."
        ),
        examples=["https://app.example.com"],
    )
    local_checkout: bool = Field(
        _default(BillingConfig, "local_checkout"),
        description=(
            "The offline test checkout and its public webhook secret (`make dev` sets it); honoured"
            " only with `HAUNTED_ENV=dev` and no Stripe key."
        ),
    )


class GraphQLSettings(BaseSettings):
    """HAUNTED_GRAPHQL_*: the gateway's GraphQL limits and caches."""

    model_config = _section("HAUNTED_GRAPHQL_")

    max_body_bytes: int = Field(
        _default(GraphQLConfig, "max_body_bytes"), ge=1024, description="Larger requests get 413."
    )
    max_tokens: int = Field(
        _default(GraphQLConfig, "max_tokens"), ge=100, description="Tokens one document may have."
    )
    max_depth: int = Field(
        _default(GraphQLConfig, "max_depth"), ge=1, description="Selection depth.", examples=["12"]
    )
    max_aliases: int = Field(
        _default(GraphQLConfig, "max_aliases"), ge=0, description="Aliases per operation."
    )
    # Every field costs 1; a list multiplies what is under it by `first` or this size.
    max_cost: int = Field(
        _default(GraphQLConfig, "max_cost"),
        ge=1,
        description="Estimated cost: each field 1, lists multiply by their `first`/`last`/`limit`.",
    )
    default_list_size: int = Field(
        _default(GraphQLConfig, "default_list_size"),
        ge=1,
        description="List size assumed when a list has no size argument.",
    )
    max_batch: int = Field(
        _default(GraphQLConfig, "max_batch"),
        ge=1,
        description="Operations in one batched (JSON array) request.",
    )
    timeout_s: float = Field(
        _default(GraphQLConfig, "timeout_s"), gt=0, description="Time one operation may run."
    )
    introspection: bool | None = Field(
        None,
        description="Schema introspection. Unset: on, except in `prod`.",
        examples=["false"],
    )
    suggestions: bool | None = Field(
        None,
        description='"Did you mean" hints in validation errors. Unset: on, except in `prod`.',
        examples=["false"],
    )
    document_cache_entries: int = Field(
        _default(GraphQLConfig, "document_cache_entries"),
        ge=0,
        description="Parsed and validated documents kept per process.",
    )
    document_cache_max_document_chars: int = Field(
        _default(GraphQLConfig, "document_cache_max_document_chars"),
        ge=0,
        description="Larger documents are not cached.",
    )
    document_cache_max_total_chars: int = Field(
        _default(GraphQLConfig, "document_cache_max_total_chars"),
        ge=0,
        description="Total size of the cache.",
    )
    persisted_queries: bool = Field(
        _default(GraphQLConfig, "persisted_queries"),
        description="Automatic persisted queries (Apollo APQ), stored in Redis.",
    )
    persisted_query_ttl_s: int = Field(
        _default(GraphQLConfig, "persisted_query_ttl_s"),
        ge=60,
        description="How long a registered query is kept.",
    )
    allowlist_file: Path | None = Field(
        None,
        description="A JSON file of operations (sha256 -> document). When set, only those run.",
        examples=["/app/operations.json"],
    )


class RealtimeSettings(BaseSettings):
    """HAUNTED_REALTIME_* and the older names (HAUNTED_SOCKETIO_*, HAUNTED_PRESENCE_*, ...):
    Socket.IO, GraphQL subscriptions and presence."""

    model_config = _section("HAUNTED_REALTIME_")

    max_connections: int = Field(
        _default(RealtimeLimits, "max_connections"),
        ge=1,
        description="Socket.IO connections per gateway process. Past it, connections are refused.",
        validation_alias="HAUNTED_SOCKETIO_MAX_CONNECTIONS",
    )
    # Packets waiting for one client; past this the client is disconnected (it recovers
    # with `since`), so a slow reader costs bounded memory and never holds others back.
    max_queued_packets: int = Field(
        _default(RealtimeLimits, "max_queued_packets"),
        ge=10,
        description=(
            "A client whose outgoing queue grows past this is disconnected, and it catches up with "
            "`since`."
        ),
        validation_alias="HAUNTED_SOCKETIO_MAX_QUEUED_PACKETS",
    )
    subscription_max_queued_events: int = Field(
        _default(RealtimeLimits, "subscription_queue"),
        ge=10,
        description="A GraphQL subscription this far behind is ended.",
        validation_alias="HAUNTED_SUBSCRIPTION_MAX_QUEUED_EVENTS",
    )
    # Presence entries expire unless renewed: a dead gateway's connections vanish after the TTL.
    presence_ttl_s: float = Field(
        30.0,
        gt=0,
        description="How long a presence entry lives unless renewed.",
        validation_alias="HAUNTED_PRESENCE_TTL_S",
    )
    presence_heartbeat_s: float = Field(
        _default(RealtimeLimits, "presence_heartbeat_s"),
        gt=0,
        description="How often each gateway renews its connections' presence.",
        validation_alias="HAUNTED_PRESENCE_HEARTBEAT_S",
    )
    fanout_fetch_max_wait_ms: int = Field(
        20,
        ge=1,
        le=10_000,
        description=(
            "Longest a fetch of each gateway's fan-out consumer waits for records: it bounds "
            "the push latency on a broker that holds a fetch on idle partitions (the embedded "
            "one). Shorter than HAUNTED_KAFKA_FETCH_MAX_WAIT_MS, which the services' consumer "
            "groups keep: one consumer per gateway polls more often, not every group."
        ),
    )


# Each section: the Settings field, its model; its variables are HAUNTED_<FIELD>_<NAME>, or
# the older name a field keeps as its alias (variable_of).
SECTIONS: dict[str, type[BaseSettings]] = {
    "kafka": BusSettings,
    "auth": AuthSettings,
    "graphql": GraphQLSettings,
    "realtime": RealtimeSettings,
    "analytics": AnalyticsSettings,
    "billing": BillingSettings,
    "flags": FlagsSettings,
    "llm": LlmSettings,
    "webhooks": WebhooksSettings,
    "export": ExportSettings,
}


def variable_of(section: type[BaseSettings], name: str) -> str:
    """A section field's HAUNTED_* variable: its older name, or the section's prefix + name."""
    alias = section.model_fields[name].validation_alias
    if isinstance(alias, str):
        return alias
    return f"{section.model_config.get('env_prefix', '')}{name}".upper()


def flat_names(section: type[BaseSettings]) -> dict[str, str]:
    """Flat keyword (`jwt_issuer`, `kafka_bootstrap`) -> the section's field name."""
    return {
        variable_of(section, name).removeprefix("HAUNTED_").lower(): name
        for name in section.model_fields
    }


class Settings(BaseSettings):
    """Every knob of a Haunted process, read from `HAUNTED_*` variables and `.env`.

    Settings are read from the environment and from a `.env` file in the working
    directory. The defaults are the embedded ones (`make dev`): each variable
    replaces one embedded part with the real thing. Each part's own settings are a
    section (the bus, auth, billing, GraphQL, real time and each service), read from
    the flat `HAUNTED_<SECTION>_<FIELD>` names; the variables below that predate
    the sections (`HAUNTED_JWT_ISSUER`, `HAUNTED_OUTBOX_BATCH_SIZE`, ...) keep
    their names. Plan limits (LLM tokens and requests) are the entitlements of
    `infra/plans.yaml`, not settings.

    Dict-valued variables (`HAUNTED_LLM_PRICES`, `HAUNTED_FLAGS_REQUIRED_PERMISSIONS`,
    ...) and lists take JSON. A dict given this way replaces the default whole.

    With `HAUNTED_ENV=prod`, every command stops with status 2 and one line naming
    the variable when:

    - `HAUNTED_JWT_PRIVATE_KEY_FILE` or `HAUNTED_JWT_PUBLIC_KEY_FILE` is unset, or
      `HAUNTED_PII_ENCRYPTION_KEYS` or `HAUNTED_PII_LOOKUP_KEY` is unset without
      `HAUNTED_PII_KEYS_FILE` (prod never generates keys);
    - `HAUNTED_DATABASE_URL` is SQLite, `HAUNTED_REDIS_URL` is `memory://`, or
      `HAUNTED_KAFKA_BOOTSTRAP` is `embedded`;
    - `HAUNTED_STRIPE_API_KEY` is set without `HAUNTED_STRIPE_WEBHOOK_SECRET`.

    Any invalid value does the same in every environment, for example
    `error: HAUNTED_PORT: Input should be greater than or equal to 1`.
    """

    model_config = SettingsConfigDict(
        env_prefix="HAUNTED_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Literal["dev", "test", "prod"] = Field(
        "dev",
        description=(
            "Which environment this is. `prod` refuses the embedded defaults and turns GraphQL "
            "introspection and suggestions off."
        ),
        examples=["prod"],
    )
    host: str = Field(
        "127.0.0.1",
        description="Address the gateway listens on.",
        examples=["0.0.0.0"],
    )
    port: int = Field(
        8000,
        ge=1,
        le=65535,
        description="Port of the gateway (GraphQL, Socket.IO, health, metrics).",
    )
    # Proxies whose X-Forwarded-For/-Proto uvicorn believes (comma-separated, or "*"):
    # behind a load balancer, its address, so per-IP limits see each client.
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description=(
            "Proxies whose `X-Forwarded-For` is believed (uvicorn's `forwarded_allow_ips`): behind "
            "a load balancer set its address, or every client shares one per-IP rate-limit bucket."
        ),
        examples=["10.0.0.0/8"],
    )
    # /metrics as a bearer-protected route; unset, served in dev and tests only.
    metrics_token: SecretStr | None = Field(
        None,
        description=(
            "`/metrics` needs `Authorization: Bearer <token>`. Unset: `/metrics` is open in dev and"
            " test, and answers 403 in prod."
        ),
        examples=["a long random string"],
    )
    data_dir: Path = Field(
        Path(".haunted"),
        description=(
            "Where generated keys go (`<dir>/keys/`, `<dir>/retired-keys/`, `<dir>/pii-keys.json`)."
        ),
        examples=["/var/lib/haunted"],
    )
    backup_dir: Path = Field(
        Path("backups"),
        description=(
            "Where `haunted backup` writes (its `--dir` default). An erase rewrites the key "
            "files of the backups there, so an erased user stays unreadable in them "
            "(docs/privacy.md)."
        ),
        examples=["/var/backups/haunted"],
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO",
        description="Least severe level written to the log.",
    )
    log_json: bool = Field(
        True,
        description="JSON log lines. `false` for human-readable console output.",
    )

    database_url: str = Field(
        "sqlite+aiosqlite:///.haunted/haunted.db",
        description="SQLAlchemy async URL. Not derived from `HAUNTED_DATA_DIR`.",
        examples=["postgresql+asyncpg://user:pw@db/haunted"],
    )
    redis_url: str = Field(
        MEMORY,
        description="Sessions, roles cache, rate limits, persisted queries, presence.",
        examples=["redis://redis:6379/0"],
    )

    openai_api_key: SecretStr | None = Field(
        None,
        description=(
            "Key of the OpenAI-compatible API. Unset: the offline `offline-echo` model (when the "
            "base URL is unset too)."
        ),
    )
    openai_base_url: str | None = Field(
        None,
        description=(
            "Base URL of the OpenAI-compatible API, e.g. a vLLM or Ollama server. Unset: OpenAI's."
        ),
    )
    unleash_url: str | None = Field(
        None,
        description=(
            "An Unleash server to read definitions from. Unset: flags from `HAUNTED_FLAGS_FILE`."
        ),
        examples=["http://unleash:4242/api"],
    )
    unleash_api_token: SecretStr | None = Field(
        None,
        description="API token of the Unleash server (a backend token).",
    )

    # Each service's section (see SECTIONS): `settings.kafka.bootstrap` is read from
    # HAUNTED_KAFKA_BOOTSTRAP, `settings.auth.jwt_issuer` from HAUNTED_JWT_ISSUER.
    kafka: BusSettings = Field(default_factory=BusSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    graphql: GraphQLSettings = Field(default_factory=GraphQLSettings)
    realtime: RealtimeSettings = Field(default_factory=RealtimeSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    flags: FlagsSettings = Field(default_factory=FlagsSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)

    # The web app and the one origin allowlist (runtime.md)
    web_port: int = Field(
        3000,
        ge=1,
        le=65535,
        description="Port of the web app under `make dev` (`next dev`).",
    )
    web_public_url: str | None = Field(
        None,
        description=(
            "Where browsers come back to from checkout. Unset: `http://127.0.0.1:WEB_PORT`."
        ),
        examples=["https://app.example.com"],
    )
    cors_origins: list[str] | None = Field(
        None,
        description=(
            "The one origin allowlist for `/graphql` and Socket.IO (a JSON list). Unset: in dev, "
            "`http://localhost:3000`, `http://127.0.0.1:3000` and the `HAUNTED_WEB_PORT` origins."
        ),
        examples=['["https://app.example.com"]'],
    )
    otlp_endpoint: AnyHttpUrl | None = Field(
        None,
        description="OTLP/HTTP base URL: traces go to `<base>/v1/traces`. Unset: no trace export.",
        examples=["http://otel-collector:4318"],
    )
    trace_sample_ratio: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Share of new traces recorded (parent-based). Unset: 1.0, or 0.1 in `prod`.",
    )
    worker_port: int = Field(
        9100,
        ge=1,
        le=65535,
        description="`haunted worker` serves `/metrics`, `/healthz` and `/readyz` on this port "
        "(`haunted dev` and `haunted serve` serve them on `HAUNTED_PORT`).",
    )
    slow_query_ms: float = Field(
        200.0,
        gt=0,
        description=(
            "A database statement slower than this is logged (`slow query`, no parameters)."
        ),
    )

    # Email (issue 14): the notifications email channel sends through this SMTP server.
    # Unset host: in dev, the mail catcher `haunted dev` runs on mail_catcher_port;
    # elsewhere no mail is sent (the email channel's consumer does not run).
    smtp_host: str | None = Field(
        None,
        description=(
            "Where mail is sent ([email](/docs/email)). Unset: in dev, the mail catcher `haunted "
            "dev` runs; elsewhere no mail is sent (the email channel's consumer does not run)."
        ),
        examples=["smtp.example.com"],
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="The SMTP server's port.")
    smtp_username: str | None = Field(None, description="SMTP login.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str = Field(
        "Haunted <no-reply@localhost>",
        description="The From of every mail.",
        examples=["Example <no-reply@example.com>"],
    )
    smtp_starttls: bool = Field(True, description="STARTTLS before logging in.")
    smtp_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Time per SMTP operation; past it, an outage (waited out).",
    )
    mail_catcher_port: int = Field(
        1025,
        ge=1,
        le=65535,
        description=(
            "The dev mail catcher's SMTP port (`haunted dev`, `/dev/mail`, `haunted mail list`)."
        ),
    )
    mail_link_base_url: str | None = Field(
        None,
        description=(
            "Where links in mail point (the web app's pages). Unset: `http://HOST:WEB_PORT`."
        ),
        examples=["https://app.example.com"],
    )

    @model_validator(mode="before")
    @classmethod
    def _flat_names_fill_sections(cls, data: Any) -> Any:
        """`Settings(llm_timeout_s=5)` as `HAUNTED_LLM_TIMEOUT_S=5`: flat keyword
        arguments (and .env lines) go to their section, which reads the rest itself."""
        if not isinstance(data, dict):
            return data
        for section, model in SECTIONS.items():
            names = flat_names(model)
            flat = {
                names[key]: _decoded(model, names[key], data.pop(key))
                for key in [key for key in data if key in names]
            }
            if flat and section not in data:
                try:
                    data[section] = model(**flat)
                except ValidationError as error:
                    raise ValueError(_named(model, error)) from None
        return data

    @field_validator("otlp_endpoint", "metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # Compose passes `${HAUNTED_OTLP_ENDPOINT:-}`: an empty value means unset (no
        # export; and never an empty metrics token that an empty bearer would match).
        return None if value == "" else value

    @model_validator(mode="after")
    def _production_refuses_defaults(self) -> Settings:
        if self.env != "prod":
            return self
        auth, billing = self.auth, self.billing
        if auth.jwt_private_key_file is None or auth.jwt_public_key_file is None:
            raise ValueError(
                "HAUNTED_JWT_PRIVATE_KEY_FILE and HAUNTED_JWT_PUBLIC_KEY_FILE are required in prod"
            )
        if auth.pii_keys_file is None and (
            auth.pii_encryption_keys is None or auth.pii_lookup_key is None
        ):
            raise ValueError(
                "HAUNTED_PII_ENCRYPTION_KEYS and HAUNTED_PII_LOOKUP_KEY (or "
                "HAUNTED_PII_KEYS_FILE) are required in prod"
            )
        for name, value in (
            ("HAUNTED_DATABASE_URL", self.database_url.startswith("sqlite")),
            ("HAUNTED_REDIS_URL", self.redis_url == MEMORY),
            ("HAUNTED_KAFKA_BOOTSTRAP", self.kafka.uses_embedded),
        ):
            if value:
                raise ValueError(
                    f"{name} must name a real server in prod, not the embedded default"
                )
        if billing.stripe_api_key is not None and billing.stripe_webhook_secret is None:
            raise ValueError("HAUNTED_STRIPE_WEBHOOK_SECRET is required when Stripe is configured")
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Like pydantic's, with the passwords in the server URLs masked."""
        for name, value in super().__repr_args__():
            if name in _URLS_WITH_PASSWORDS and isinstance(value, str):
                value = _hide_password(value)
            yield name, value

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """As pydantic's (no validation), and a flat name (`auth_rate_limit_per_account`)
        changes its section's field; a name that is no setting is refused, not ignored."""
        changes = dict(update or {})
        for section, model in SECTIONS.items():
            names = flat_names(model)
            inner = {names[key]: changes.pop(key) for key in [k for k in changes if k in names]}
            if inner:
                changes[section] = changes.get(section, getattr(self, section)).model_copy(
                    update=inner
                )
        unknown = set(changes) - set(type(self).model_fields)
        if unknown:
            raise ValueError(f"no such settings: {', '.join(sorted(unknown))}")
        return super().model_copy(update=changes, deep=deep)

    def flat_value(self, name: str) -> Any:
        """A setting by its flat name (`kafka_bootstrap`, `port`), in a section or not."""
        for section, model in SECTIONS.items():
            field = flat_names(model).get(name)
            if field is not None:
                return getattr(getattr(self, section), field)
        return getattr(self, name)

    @property
    def flat_fields_set(self) -> set[str]:
        """The flat names given explicitly: by a variable, the .env file or a keyword."""
        names = self.model_fields_set - set(SECTIONS)
        for section, model in SECTIONS.items():
            flat = {field: name for name, field in flat_names(model).items()}
            names |= {flat[field] for field in getattr(self, section).model_fields_set}
        return names

    @property
    def allowed_origins(self) -> list[str]:
        """HAUNTED_CORS_ORIGINS, or in its absence the dev web app's origins."""
        if self.cors_origins is not None:
            return self.cors_origins
        if self.env == "prod":
            return []  # unset in prod: no cross-origin browser (docs/graphql-http.md)
        ports = dict.fromkeys((self.web_port, 3000))
        return [f"http://{host}:{port}" for port in ports for host in ("localhost", "127.0.0.1")]

    @property
    def mail_dir(self) -> Path:
        """Where the dev mail catcher keeps what it caught (`haunted mail list`, /dev/mail)."""
        return self.data_dir / "mail"

    @property
    def web_url(self) -> str:
        return (self.web_public_url or f"http://127.0.0.1:{self.web_port}").rstrip("/")

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


_URLS_WITH_PASSWORDS = ("database_url", "redis_url")


def _hide_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "[unparsable URL]"


def _decoded(section: type[BaseSettings], name: str, value: Any) -> Any:
    """A .env line's JSON (`HAUNTED_LLM_PRICES={...}`) as the environment's would be read:
    the top-level .env source hands section lines over undecoded."""
    annotation = section.model_fields[name].annotation
    kinds = {typing.get_origin(arg) for arg in (annotation, *typing.get_args(annotation))}
    if isinstance(value, str) and kinds & {dict, list, tuple}:
        try:
            return json.loads(value)
        except ValueError:
            return value  # refused by the section's validation, which names the variable
    return value


def _named(section: type[BaseSettings], error: ValidationError) -> str:
    """A section's first error, titled with its variable: `HAUNTED_JWT_ISSUER: ...`."""
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    name = variable_of(section, field) if field in section.model_fields else field.upper()
    return f"{name}: {first['msg']}"


class ConfigurationError(Exception):
    """Bad configuration, said in one line that names the variable."""


def variables() -> set[str]:
    """Every HAUNTED_* variable name: the flat fields and each section's."""
    names = {f"HAUNTED_{name.upper()}" for name in Settings.model_fields if name not in SECTIONS}
    for model in SECTIONS.values():
        names |= {variable_of(model, name) for name in model.model_fields}
    return names


def load_settings(**overrides: object) -> Settings:
    """Reads the environment; raises ConfigurationError with one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        # A section's own error (read by its default factory) is titled with its class.
        by_class = {model.__name__: model for model in SECTIONS.values()}
        if error.title in by_class:
            raise ConfigurationError(_named(by_class[error.title], error)) from None
        first = error.errors()[0]
        loc = [str(part) for part in first["loc"]]
        message = first["msg"].removeprefix("Value error, ")
        if len(loc) > 1 and loc[0] in SECTIONS and loc[1] in SECTIONS[loc[0]].model_fields:
            name = variable_of(SECTIONS[loc[0]], loc[1])
            raise ConfigurationError(f"{name}: {message}") from None
        if loc:
            raise ConfigurationError(f"HAUNTED_{loc[0].upper()}: {message}") from None
        raise ConfigurationError(message) from None
