"""The one settings object. Nothing else in the project reads os.environ."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from services.analytics import AnalyticsLimits

EMBEDDED = "embedded"
MEMORY = "memory://"
ROOT = Path(__file__).resolve().parents[1]


def _section(prefix: str) -> SettingsConfigDict:
    """A service's settings, read from the flat `HAUNTED_<SERVICE>_<FIELD>` names."""
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore")


class AnalyticsSettings(BaseSettings, AnalyticsLimits):
    """HAUNTED_ANALYTICS_*: the facade takes this section as its limits."""

    model_config = _section("HAUNTED_ANALYTICS_")


class FlagsSettings(BaseSettings):
    """HAUNTED_FLAGS_*."""

    model_config = _section("HAUNTED_FLAGS_")

    file: Path = ROOT / "infra" / "flags.json"
    app_name: str = "haunted"
    refresh_interval_s: float = Field(15.0, gt=0)
    flush_interval_s: float = Field(5.0, gt=0)
    fetch_timeout_s: float = Field(5.0, gt=0)
    plan_cache_ttl_s: float = Field(30.0, ge=0)
    default_plan: str = "free"
    # flag -> permission, for flags on an Unleash server (the file declares its own)
    required_permissions: dict[str, str] = Field(default_factory=dict)


class LlmSettings(BaseSettings):
    """HAUNTED_LLM_*. Plan limits are the plans file's entitlements, not settings."""

    model_config = _section("HAUNTED_LLM_")

    # Prompt files; unset: prompts/ at the repository root. Reloaded on change when
    # prompts_reload is on (unset: on in dev).
    prompts_dir: Path | None = None
    prompts_reload: bool | None = None
    timeout_s: float = Field(60.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    # Attempts per model after the first, on 429/5xx/timeouts; then the fallback models.
    max_retries: int = Field(2, ge=0)
    retry_backoff_s: float = Field(0.5, ge=0)
    retry_max_wait_s: float = Field(20.0, ge=0)
    # USD per million tokens, [prompt, completion]; unknown models cost 0.
    prices: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "gpt-4o-mini": (0.15, 0.60),
            "gpt-4.1-mini": (0.40, 1.60),
            "gpt-4o": (2.50, 10.00),
            "offline-echo": (0.0, 0.0),
        }
    )


class WebhooksSettings(BaseSettings):
    """HAUNTED_WEBHOOKS_*: customer webhooks (docs/webhooks.md)."""

    model_config = _section("HAUNTED_WEBHOOKS_")

    # Unset: https only, and no private, loopback or link-local address, in prod.
    require_https: bool | None = None
    allow_private_addresses: bool | None = None
    timeout_s: float = Field(15.0, gt=0)  # a 2xx within this counts as delivered
    max_response_bytes: int = Field(64 * 1024, ge=0)
    max_in_flight_per_endpoint: int = Field(4, ge=1)
    max_in_flight: int = Field(200, ge=1)
    poll_interval_s: float = Field(0.5, gt=0)
    # After a rotation the old secret signs beside the new one for this long.
    secret_overlap_s: int = Field(24 * 3600, ge=0)
    # An endpoint failing with no success for this long is disabled.
    disable_after_s: int = Field(5 * 24 * 3600, ge=60)
    max_endpoints_per_team: int = Field(20, ge=1)


# Each service's section: the Settings field, its model; flat names are HAUNTED_<FIELD>_<NAME>.
SECTIONS: dict[str, type[BaseSettings]] = {
    "analytics": AnalyticsSettings,
    "flags": FlagsSettings,
    "llm": LlmSettings,
    "webhooks": WebhooksSettings,
}


class Settings(BaseSettings):
    """Every knob of a Haunted process, read from `HAUNTED_*` variables and `.env`.

    The defaults are the embedded ones (`make dev`): each variable switches one
    part to the real thing.
    """

    model_config = SettingsConfigDict(
        env_prefix="HAUNTED_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Literal["dev", "test", "prod"] = "dev"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    # Proxies whose X-Forwarded-For/-Proto uvicorn believes (comma-separated, or "*"):
    # behind a load balancer, its address, so per-IP limits see each client.
    forwarded_allow_ips: str = "127.0.0.1"
    # /metrics as a bearer-protected route; unset, served in dev and tests only.
    metrics_token: SecretStr | None = None
    data_dir: Path = Path(".haunted")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True

    database_url: str = "sqlite+aiosqlite:///.haunted/haunted.db"
    redis_url: str = MEMORY

    kafka_bootstrap: str = EMBEDDED
    embedded_kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_partitions: int = Field(3, ge=1)
    kafka_replication_factor: int = Field(1, ge=1)
    # The embedded broker joins a group in about session_timeout/2.
    kafka_session_timeout_ms: int = Field(6000, ge=100)
    kafka_heartbeat_interval_ms: int = Field(500, ge=10)
    kafka_fetch_max_wait_ms: int = Field(100, ge=1, le=10_000)
    # Kafka's idempotent producer for the outbox relay (on in production; the
    # embedded broker does not support it, and the relay keeps key order without it).
    kafka_idempotence: bool = False
    # Retention of the <topic>.dlq topics (set when they are created): time to look
    # at dead letters (`haunted dlq list`) and re-drive them.
    dlq_retention_s: int = Field(14 * 24 * 3600, ge=3600)

    outbox_batch_size: int = Field(500, ge=1, le=10_000)
    outbox_poll_interval_s: float = Field(0.2, gt=0)
    outbox_retention_s: float = Field(3600, ge=0)
    # How long consumers remember which events they handled (processed_events): at
    # least the topics' retention plus the longest replay window, so that no
    # redelivery or replay can find an event forgotten. Purged by the relay.
    processed_events_retention_s: float = Field(14 * 24 * 3600, ge=3600)
    # Attempts before a record whose handling fails for a reason of its own is
    # dead-lettered. An outage (database, Redis, broker) is waited out without limit,
    # the wait doubling from consumer_retry_backoff_s up to consumer_max_backoff_s.
    consumer_max_attempts: int = Field(3, ge=1)
    consumer_retry_backoff_s: float = Field(0.1, ge=0)
    consumer_max_backoff_s: float = Field(30.0, gt=0)
    # A handler (or a batch write) running longer counts as an outage, not a poison record.
    consumer_handler_timeout_s: float = Field(60.0, gt=0)

    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "haunted"
    jwt_audience: str = "haunted"
    access_token_ttl_s: int = Field(24 * 3600, ge=60)
    session_ttl_s: int = Field(24 * 3600, ge=60)
    bcrypt_rounds: int = Field(12, ge=4, le=16)

    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    unleash_url: str | None = None
    unleash_api_token: SecretStr | None = None

    graphql_max_body_bytes: int = Field(1_000_000, ge=1024)

    # Auth (issue 3)
    # Extra public keys that still verify tokens (rotation with mounted key files).
    jwt_previous_public_key_files: list[Path] = Field(default_factory=list)
    # PII at rest: "kid:base64-32-bytes,..." (first one encrypts) and the HMAC lookup key.
    # Unset in dev: generated once into data_dir/keys.
    pii_encryption_keys: SecretStr | None = None
    pii_lookup_key: SecretStr | None = None
    # Or both from one JSON file {"ring": ..., "lookup": ...}, as `haunted keys init` writes.
    pii_keys_file: Path | None = None
    refresh_token_ttl_s: int = Field(30 * 24 * 3600, ge=60)
    invite_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    permissions_cache_ttl_s: int = Field(300, ge=1)
    lockout_threshold: int = Field(5, ge=1)
    lockout_account_threshold: int = Field(50, ge=1)
    # register refused, signUp + verifyEmail instead (reveals nothing); None: on in prod only.
    require_email_verification: bool | None = None
    lockout_duration_s: int = Field(30 * 60, ge=1)
    # `limits` notation, shared by every gateway through Redis.
    auth_rate_limit_per_ip: str = "60/minute"
    auth_rate_limit_per_account: str = "10/minute"

    # GraphQL gateway limits (issue 9)
    graphql_max_tokens: int = Field(5_000, ge=100)
    graphql_max_depth: int = Field(15, ge=1)
    graphql_max_aliases: int = Field(30, ge=0)
    # Every field costs 1; a list multiplies what is under it by `first` or this size.
    graphql_max_cost: int = Field(10_000, ge=1)
    graphql_default_list_size: int = Field(10, ge=1)
    graphql_max_batch: int = Field(10, ge=1)
    graphql_timeout_s: float = Field(10.0, gt=0)
    # Unset: on, except in prod.
    graphql_introspection: bool | None = None
    graphql_suggestions: bool | None = None
    graphql_document_cache_entries: int = Field(1_000, ge=0)
    graphql_document_cache_max_document_chars: int = Field(10_000, ge=0)
    graphql_document_cache_max_total_chars: int = Field(1_000_000, ge=0)
    graphql_persisted_queries: bool = True
    graphql_persisted_query_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    # A JSON file of operations (sha256 -> document): when set, only those run.
    graphql_allowlist_file: Path | None = None

    # Real-time (issue 4)
    # Socket.IO connections one gateway process holds; more are refused with connect_error.
    socketio_max_connections: int = Field(10_000, ge=1)
    # Packets waiting for one client; past this the client is disconnected (it recovers
    # with `since`), so a slow reader costs bounded memory and never holds others back.
    socketio_max_queued_packets: int = Field(1_000, ge=10)
    # Events waiting for one GraphQL subscription; past this it is ended.
    subscription_max_queued_events: int = Field(1_000, ge=10)
    # Presence entries expire unless renewed: a dead gateway's connections vanish after the TTL.
    presence_ttl_s: float = Field(30.0, gt=0)
    presence_heartbeat_s: float = Field(10.0, gt=0)
    # Per service: HAUNTED_ANALYTICS_*, HAUNTED_FLAGS_*, HAUNTED_LLM_*, HAUNTED_WEBHOOKS_*
    # (see SECTIONS).
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    flags: FlagsSettings = Field(default_factory=FlagsSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    webhooks: WebhooksSettings = Field(default_factory=WebhooksSettings)

    # The web app and the one origin allowlist (runtime.md)
    web_port: int = Field(3000, ge=1, le=65535)
    # Where browsers come back to from checkout. Unset: http://127.0.0.1:WEB_PORT.
    web_public_url: str | None = None
    # Unset: the dev origins (localhost and 127.0.0.1 on web_port, and on 3000).
    cors_origins: list[str] | None = None
    # OTLP/HTTP base URL for traces; unset: no trace export.
    otlp_endpoint: AnyHttpUrl | None = None
    # Share of new traces recorded (parent-based); unset: 1.0, or 0.1 when env=prod.
    trace_sample_ratio: float | None = Field(None, ge=0, le=1)
    # `haunted worker` serves /metrics, /healthz and /readyz here (dev and serve: on `port`).
    worker_port: int = Field(9100, ge=1, le=65535)
    # A database statement slower than this is logged (`slow query`, no parameters).
    slow_query_ms: float = Field(200.0, gt=0)

    # Billing (issue 5)
    # Unset: infra/plans.yaml of this checkout.
    plans_file: Path | None = None
    stripe_webhook_tolerance_s: int = Field(300, ge=1)
    stripe_webhook_max_body_bytes: int = Field(512 * 1024, ge=1024)
    stripe_timeout_s: float = Field(20.0, gt=0)
    # Where buyers come back to (checkout success, portal return, the local test
    # checkout). Unset: http://HOST:PORT.
    billing_public_url: str | None = None
    # The offline test checkout, whose webhook secret is public: honoured only with env=dev.
    billing_local_checkout: bool = False

    # Email (issue 14): the notifications email channel sends through this SMTP server.
    # Unset host: in dev, the mail catcher `haunted dev` runs on mail_catcher_port;
    # elsewhere no mail is sent (the email channel's consumer does not run).
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Haunted <no-reply@localhost>"
    smtp_starttls: bool = True
    smtp_timeout_s: float = Field(30.0, gt=0)
    mail_catcher_port: int = Field(1025, ge=1, le=65535)
    # Where links in mail point (the web app's pages). Unset: http://HOST:WEB_PORT.
    mail_link_base_url: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _flat_names_fill_sections(cls, data: Any) -> Any:
        """`Settings(llm_timeout_s=5)` as `HAUNTED_LLM_TIMEOUT_S=5`: flat keyword
        arguments (and .env lines) go to their section, which reads the rest itself."""
        if not isinstance(data, dict):
            return data
        for section, model in SECTIONS.items():
            prefix = f"{section}_"
            flat = {
                key.removeprefix(prefix): data.pop(key)
                for key in [key for key in data if key.startswith(prefix)]
                if key.removeprefix(prefix) in model.model_fields
            }
            if flat and section not in data:
                try:
                    data[section] = model(**flat)
                except ValidationError as error:
                    first = error.errors()[0]
                    name = f"HAUNTED_{prefix.upper()}{str(first['loc'][0]).upper()}"
                    raise ValueError(f"{name}: {first['msg']}") from None
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
        if self.jwt_private_key_file is None or self.jwt_public_key_file is None:
            raise ValueError(
                "HAUNTED_JWT_PRIVATE_KEY_FILE and HAUNTED_JWT_PUBLIC_KEY_FILE are required in prod"
            )
        if self.pii_keys_file is None and (
            self.pii_encryption_keys is None or self.pii_lookup_key is None
        ):
            raise ValueError(
                "HAUNTED_PII_ENCRYPTION_KEYS and HAUNTED_PII_LOOKUP_KEY (or "
                "HAUNTED_PII_KEYS_FILE) are required in prod"
            )
        for name, value in (
            ("HAUNTED_DATABASE_URL", self.database_url.startswith("sqlite")),
            ("HAUNTED_REDIS_URL", self.redis_url == MEMORY),
            ("HAUNTED_KAFKA_BOOTSTRAP", self.kafka_bootstrap == EMBEDDED),
        ):
            if value:
                raise ValueError(
                    f"{name} must name a real server in prod, not the embedded default"
                )
        if self.stripe_api_key is not None and self.stripe_webhook_secret is None:
            raise ValueError("HAUNTED_STRIPE_WEBHOOK_SECRET is required when Stripe is configured")
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Like pydantic's, with the passwords in the server URLs masked."""
        for name, value in super().__repr_args__():
            if name in _URLS_WITH_PASSWORDS and isinstance(value, str):
                value = _hide_password(value)
            yield name, value

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

    @property
    def uses_embedded_kafka(self) -> bool:
        return self.kafka_bootstrap == EMBEDDED

    @property
    def kafka_servers(self) -> str:
        if self.uses_embedded_kafka:
            return f"127.0.0.1:{self.embedded_kafka_port}"
        return self.kafka_bootstrap


_URLS_WITH_PASSWORDS = ("database_url", "redis_url")


def _hide_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "[unparsable URL]"


class ConfigurationError(Exception):
    """Bad configuration, said in one line that names the variable."""


def variables() -> set[str]:
    """Every HAUNTED_* variable name: the flat fields and each section's."""
    names = {f"HAUNTED_{name.upper()}" for name in Settings.model_fields if name not in SECTIONS}
    for section, model in SECTIONS.items():
        names |= {f"HAUNTED_{section.upper()}_{name.upper()}" for name in model.model_fields}
    return names


def load_settings(**overrides: object) -> Settings:
    """Reads the environment; raises ConfigurationError with one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        loc = [str(part) for part in first["loc"]]
        message = first["msg"].removeprefix("Value error, ")
        # A section's own error (read by its default factory) is titled with its class.
        sections = {model.__name__: f"{name.upper()}_" for name, model in SECTIONS.items()}
        if loc and loc[0] in SECTIONS and len(loc) > 1:
            loc = [f"{loc[0]}_{loc[1]}"]
        if loc:
            prefix = sections.get(error.title, "")
            raise ConfigurationError(f"HAUNTED_{prefix}{loc[0].upper()}: {message}") from None
        raise ConfigurationError(message) from None
