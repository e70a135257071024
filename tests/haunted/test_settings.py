"""haunted/settings.py: the embedded defaults, the production guard rails, and secrets
that stay secret."""

from __future__ import annotations

import base64
import os
import re
import typing
from pathlib import Path

import pytest
from pydantic import SecretStr

from haunted.settings import (
    SECTIONS,
    ConfigurationError,
    Settings,
    flat_names,
    load_settings,
    variable_of,
    variables,
)

SECRET_FIELD = re.compile(r"(_secret|_token|_api_key|_password|_key|_keys)$")


@pytest.fixture
def prod_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, signing_key_files: tuple[Path, Path]
) -> dict[str, str]:
    """A valid production environment, set; the tests take one part away at a time."""
    monkeypatch.chdir(tmp_path)  # no developer's .env
    env = {
        "HAUNTED_ENV": "prod",
        "HAUNTED_DATABASE_URL": "postgresql+asyncpg://haunted:pw@db/haunted",
        "HAUNTED_REDIS_URL": "redis://redis:6379/0",
        "HAUNTED_KAFKA_BOOTSTRAP": "kafka-1:9092,kafka-2:9092",
        "HAUNTED_JWT_PRIVATE_KEY_FILE": str(signing_key_files[0]),
        "HAUNTED_JWT_PUBLIC_KEY_FILE": str(signing_key_files[1]),
        "HAUNTED_PII_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "HAUNTED_PII_LOOKUP_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_defaults_are_the_embedded_ones() -> None:
    settings = Settings(_env_file=None)
    assert settings.env == "dev"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.database_url == "sqlite+aiosqlite:///.haunted/haunted.db"
    assert settings.redis_url == "memory://"
    assert settings.kafka.bootstrap == "embedded"
    assert settings.kafka.uses_embedded
    assert settings.kafka.servers == "127.0.0.1:9092"
    assert settings.auth.jwt_private_key_file is None and settings.auth.jwt_public_key_file is None
    assert settings.keys_dir == Path(".haunted") / "keys"
    assert settings.billing.stripe_api_key is None and settings.billing.stripe_api_base is None
    assert settings.openai_api_key is None and settings.openai_base_url is None
    assert settings.unleash_url is None and settings.unleash_api_token is None


def test_variables_and_the_env_file_are_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("HAUNTED_PORT=9001\nHAUNTED_EMBEDDED_KAFKA_PORT=19092\n")
    monkeypatch.setenv("HAUNTED_HOST", "0.0.0.0")
    settings = load_settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 9001)
    assert settings.kafka.servers == "127.0.0.1:19092"
    monkeypatch.setenv("HAUNTED_KAFKA_BOOTSTRAP", "kafka-1:9092")
    settings = load_settings()
    assert not settings.kafka.uses_embedded
    assert settings.kafka.servers == "kafka-1:9092"


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAUNTED_PORT", "notaport")
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert str(error.value).startswith("HAUNTED_PORT: ")
    assert "\n" not in str(error.value)


def test_production_with_real_servers_and_mounted_keys_is_accepted(
    prod_env: dict[str, str],
) -> None:
    settings = load_settings()
    assert settings.env == "prod"
    assert settings.kafka.servers == "kafka-1:9092,kafka-2:9092"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("HAUNTED_JWT_PRIVATE_KEY_FILE", None, "HAUNTED_JWT_PRIVATE_KEY_FILE"),
        ("HAUNTED_JWT_PUBLIC_KEY_FILE", None, "HAUNTED_JWT_PUBLIC_KEY_FILE"),
        ("HAUNTED_DATABASE_URL", "sqlite+aiosqlite:///haunted.db", "HAUNTED_DATABASE_URL"),
        ("HAUNTED_DATABASE_URL", None, "HAUNTED_DATABASE_URL"),
        ("HAUNTED_REDIS_URL", "memory://", "HAUNTED_REDIS_URL"),
        ("HAUNTED_REDIS_URL", None, "HAUNTED_REDIS_URL"),
        ("HAUNTED_KAFKA_BOOTSTRAP", "embedded", "HAUNTED_KAFKA_BOOTSTRAP"),
        ("HAUNTED_KAFKA_BOOTSTRAP", None, "HAUNTED_KAFKA_BOOTSTRAP"),
    ],
)
def test_production_refuses_the_embedded_defaults(
    prod_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str | None,
    named: str,
) -> None:
    """None: the variable is unset, so the embedded default (or generated keys) applies."""
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    message = str(error.value)
    assert named in message
    assert "\n" not in message


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def test_secret_fields_are_secret_strings() -> None:
    fields = {name: field.annotation for name, field in Settings.model_fields.items()}
    for model in SECTIONS.values():
        fields |= {name: field.annotation for name, field in model.model_fields.items()}
    secret_fields = [name for name in fields if SECRET_FIELD.search(name)]
    assert {"stripe_api_key", "stripe_webhook_secret", "openai_api_key", "unleash_api_token"} <= (
        set(secret_fields)
    )
    for name in secret_fields:
        assert _is_secret(fields[name]), f"{name} is not a SecretStr"


def test_secrets_do_not_appear_in_repr(
    prod_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "HAUNTED_DATABASE_URL": ("postgresql+asyncpg://haunted:db-password-1@db/haunted", "db-"),
        "HAUNTED_REDIS_URL": ("redis://:redis-password-2@redis:6379/0", "redis-"),
        "HAUNTED_STRIPE_API_KEY": ("sk_live_stripe-key-3", "stripe-"),
        "HAUNTED_STRIPE_WEBHOOK_SECRET": ("whsec_webhook-secret-4", "webhook-"),
        "HAUNTED_OPENAI_API_KEY": ("sk-openai-key-5", "openai-"),
        "HAUNTED_UNLEASH_API_TOKEN": ("default:development.unleash-token-6", "unleash-"),
    }
    for name, (value, _) in secrets.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    shown = repr(settings) + str(settings)
    for name, (_, marker) in secrets.items():
        assert marker not in shown, f"{name} shows in repr(settings)"
    for name in ("HAUNTED_PII_ENCRYPTION_KEYS", "HAUNTED_PII_LOOKUP_KEY"):
        assert prod_env[name] not in shown
    # What is not secret still shows: where the database and Redis are.
    assert "@db/haunted" in shown and "@redis:6379/0" in shown
    assert settings.database_url == secrets["HAUNTED_DATABASE_URL"][0]


def test_service_sections_read_their_flat_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text('HAUNTED_LLM_PRICES={"m": [1, 2]}\n')
    assert load_settings().llm.prices == {"m": (1.0, 2.0)}  # JSON in .env, as in the env
    monkeypatch.setenv("HAUNTED_LLM_TIMEOUT_S", "7")
    monkeypatch.setenv("HAUNTED_ANALYTICS_TRACK_RATE_LIMIT", "5/minute")
    settings = load_settings(flags_default_plan="pro", llm_max_retries=0)
    assert (settings.llm.timeout_s, settings.llm.max_retries) == (7.0, 0)
    assert settings.analytics.track_rate_limit == "5/minute"
    assert settings.flags.default_plan == "pro"
    monkeypatch.setenv("HAUNTED_LLM_TIMEOUT_S", "0")
    with pytest.raises(ConfigurationError, match=r"^HAUNTED_LLM_TIMEOUT_S: "):
        load_settings()


# Every documented name of the settings that moved into sections, a value that is not
# its default, and where it lands.
OLD_NAMES = {
    "HAUNTED_KAFKA_BOOTSTRAP": ("kafka-1:9092", "kafka.bootstrap"),
    "HAUNTED_EMBEDDED_KAFKA_PORT": ("19092", "kafka.embedded_port"),
    "HAUNTED_KAFKA_PARTITIONS": ("12", "kafka.partitions"),
    "HAUNTED_KAFKA_REPLICATION_FACTOR": ("3", "kafka.replication_factor"),
    "HAUNTED_KAFKA_SESSION_TIMEOUT_MS": ("10000", "kafka.session_timeout_ms"),
    "HAUNTED_KAFKA_HEARTBEAT_INTERVAL_MS": ("3000", "kafka.heartbeat_interval_ms"),
    "HAUNTED_KAFKA_FETCH_MAX_WAIT_MS": ("250", "kafka.fetch_max_wait_ms"),
    "HAUNTED_KAFKA_IDEMPOTENCE": ("true", "kafka.idempotence"),
    "HAUNTED_DLQ_RETENTION_S": ("7200", "kafka.dlq_retention_s"),
    "HAUNTED_OUTBOX_BATCH_SIZE": ("50", "kafka.outbox_batch_size"),
    "HAUNTED_OUTBOX_POLL_INTERVAL_S": ("0.5", "kafka.outbox_poll_interval_s"),
    "HAUNTED_OUTBOX_RETENTION_S": ("86400", "kafka.outbox_retention_s"),
    "HAUNTED_PROCESSED_EVENTS_RETENTION_S": ("7200", "kafka.processed_events_retention_s"),
    "HAUNTED_CONSUMER_MAX_ATTEMPTS": ("5", "kafka.consumer_max_attempts"),
    "HAUNTED_CONSUMER_RETRY_BACKOFF_S": ("0.5", "kafka.consumer_retry_backoff_s"),
    "HAUNTED_CONSUMER_MAX_BACKOFF_S": ("9", "kafka.consumer_max_backoff_s"),
    "HAUNTED_CONSUMER_HANDLER_TIMEOUT_S": ("9", "kafka.consumer_handler_timeout_s"),
    "HAUNTED_JWT_PRIVATE_KEY_FILE": ("/run/private.pem", "auth.jwt_private_key_file"),
    "HAUNTED_JWT_PUBLIC_KEY_FILE": ("/run/public.pem", "auth.jwt_public_key_file"),
    "HAUNTED_JWT_PREVIOUS_PUBLIC_KEY_FILES": (
        '["/run/old.pem"]',
        "auth.jwt_previous_public_key_files",
    ),
    "HAUNTED_JWT_ISSUER": ("https://api.example.com", "auth.jwt_issuer"),
    "HAUNTED_JWT_AUDIENCE": ("example-app", "auth.jwt_audience"),
    "HAUNTED_ACCESS_TOKEN_TTL_S": ("900", "auth.access_token_ttl_s"),
    "HAUNTED_REFRESH_TOKEN_TTL_S": ("3600", "auth.refresh_token_ttl_s"),
    "HAUNTED_SESSION_TTL_S": ("604800", "auth.session_ttl_s"),
    "HAUNTED_PERMISSIONS_CACHE_TTL_S": ("60", "auth.permissions_cache_ttl_s"),
    "HAUNTED_BCRYPT_ROUNDS": ("4", "auth.bcrypt_rounds"),
    "HAUNTED_PII_ENCRYPTION_KEYS": ("k1:a2V5", "auth.pii_encryption_keys"),
    "HAUNTED_PII_LOOKUP_KEY": ("bG9va3Vw", "auth.pii_lookup_key"),
    "HAUNTED_PII_KEYS_FILE": ("/run/pii-keys.json", "auth.pii_keys_file"),
    "HAUNTED_INVITE_TTL_S": ("3600", "auth.invite_ttl_s"),
    "HAUNTED_LOCKOUT_THRESHOLD": ("9", "auth.lockout_threshold"),
    "HAUNTED_LOCKOUT_ACCOUNT_THRESHOLD": ("99", "auth.lockout_account_threshold"),
    "HAUNTED_LOCKOUT_DURATION_S": ("60", "auth.lockout_duration_s"),
    "HAUNTED_REQUIRE_EMAIL_VERIFICATION": ("true", "auth.require_email_verification"),
    "HAUNTED_AUTH_RATE_LIMIT_PER_IP": ("5/minute", "auth.rate_limit_per_ip"),
    "HAUNTED_AUTH_RATE_LIMIT_PER_ACCOUNT": ("2/minute", "auth.rate_limit_per_account"),
    "HAUNTED_PLANS_FILE": ("/app/plans.yaml", "billing.plans_file"),
    "HAUNTED_STRIPE_API_KEY": ("sk_test_x", "billing.stripe_api_key"),
    "HAUNTED_STRIPE_WEBHOOK_SECRET": ("whsec_x", "billing.stripe_webhook_secret"),
    "HAUNTED_STRIPE_API_BASE": ("http://127.0.0.1:8420", "billing.stripe_api_base"),
    "HAUNTED_STRIPE_WEBHOOK_TOLERANCE_S": ("60", "billing.stripe_webhook_tolerance_s"),
    "HAUNTED_STRIPE_WEBHOOK_MAX_BODY_BYTES": ("4096", "billing.stripe_webhook_max_body_bytes"),
    "HAUNTED_STRIPE_TIMEOUT_S": ("3", "billing.stripe_timeout_s"),
    "HAUNTED_BILLING_PUBLIC_URL": ("https://app.example.com", "billing.public_url"),
    "HAUNTED_BILLING_LOCAL_CHECKOUT": ("true", "billing.local_checkout"),
    "HAUNTED_GRAPHQL_MAX_BODY_BYTES": ("2048", "graphql.max_body_bytes"),
    "HAUNTED_GRAPHQL_MAX_TOKENS": ("200", "graphql.max_tokens"),
    "HAUNTED_GRAPHQL_MAX_DEPTH": ("12", "graphql.max_depth"),
    "HAUNTED_GRAPHQL_MAX_ALIASES": ("3", "graphql.max_aliases"),
    "HAUNTED_GRAPHQL_MAX_COST": ("100", "graphql.max_cost"),
    "HAUNTED_GRAPHQL_DEFAULT_LIST_SIZE": ("5", "graphql.default_list_size"),
    "HAUNTED_GRAPHQL_MAX_BATCH": ("2", "graphql.max_batch"),
    "HAUNTED_GRAPHQL_TIMEOUT_S": ("2", "graphql.timeout_s"),
    "HAUNTED_GRAPHQL_INTROSPECTION": ("false", "graphql.introspection"),
    "HAUNTED_GRAPHQL_SUGGESTIONS": ("false", "graphql.suggestions"),
    "HAUNTED_GRAPHQL_DOCUMENT_CACHE_ENTRIES": ("7", "graphql.document_cache_entries"),
    "HAUNTED_GRAPHQL_DOCUMENT_CACHE_MAX_DOCUMENT_CHARS": (
        "70",
        "graphql.document_cache_max_document_chars",
    ),
    "HAUNTED_GRAPHQL_DOCUMENT_CACHE_MAX_TOTAL_CHARS": (
        "700",
        "graphql.document_cache_max_total_chars",
    ),
    "HAUNTED_GRAPHQL_PERSISTED_QUERIES": ("false", "graphql.persisted_queries"),
    "HAUNTED_GRAPHQL_PERSISTED_QUERY_TTL_S": ("600", "graphql.persisted_query_ttl_s"),
    "HAUNTED_GRAPHQL_ALLOWLIST_FILE": ("/app/operations.json", "graphql.allowlist_file"),
    "HAUNTED_SOCKETIO_MAX_CONNECTIONS": ("7", "realtime.max_connections"),
    "HAUNTED_SOCKETIO_MAX_QUEUED_PACKETS": ("70", "realtime.max_queued_packets"),
    "HAUNTED_SUBSCRIPTION_MAX_QUEUED_EVENTS": ("77", "realtime.subscription_max_queued_events"),
    "HAUNTED_PRESENCE_TTL_S": ("3", "realtime.presence_ttl_s"),
    "HAUNTED_PRESENCE_HEARTBEAT_S": ("1", "realtime.presence_heartbeat_s"),
    "HAUNTED_AUTH_SESSION_LOCAL_COPY": ("False", "auth.session_local_copy"),
    "HAUNTED_REALTIME_FANOUT_FETCH_MAX_WAIT_MS": ("35", "realtime.fanout_fetch_max_wait_ms"),
}


def _nested(settings: Settings, path: str) -> object:
    section, field = path.split(".")
    value = getattr(getattr(settings, section), field)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_every_older_name_still_sets_its_nested_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The names people have in their deployments keep working, from the environment,
    from .env and as keywords; and none is forgotten (the list is the sections' own)."""
    monkeypatch.chdir(tmp_path)
    moved = {
        variable_of(model, name): f"{section}.{name}"
        for section in ("kafka", "auth", "billing", "graphql", "realtime")
        for name in SECTIONS[section].model_fields
        for model in [SECTIONS[section]]
    }
    assert {name: path for name, (_, path) in OLD_NAMES.items()} == moved
    assert set(OLD_NAMES) <= variables()
    defaults = Settings(_env_file=None)
    for name, (value, path) in OLD_NAMES.items():
        assert str(_nested(defaults, path)) != value, f"{name}: pick a value that is no default"
        monkeypatch.setenv(name, value)
        from_env = _nested(load_settings(), path)
        monkeypatch.delenv(name)
        (tmp_path / ".env").write_text(f"{name}={value}\n")
        from_env_file = _nested(load_settings(), path)
        (tmp_path / ".env").unlink()
        keyword = name.removeprefix("HAUNTED_").lower()
        from_keyword = _nested(load_settings(**{keyword: from_env}), path)
        assert from_env == from_env_file == from_keyword, name
        assert from_env != _nested(defaults, path), name


def test_a_bad_older_name_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HAUNTED_BCRYPT_ROUNDS", "99")
    with pytest.raises(ConfigurationError, match=r"^HAUNTED_BCRYPT_ROUNDS: "):
        load_settings()
    monkeypatch.delenv("HAUNTED_BCRYPT_ROUNDS")
    with pytest.raises(ConfigurationError, match=r"^HAUNTED_GRAPHQL_MAX_DEPTH: "):
        load_settings(graphql_max_depth=0)
    with pytest.raises(ConfigurationError, match=r"^HAUNTED_SOCKETIO_MAX_CONNECTIONS: "):
        load_settings(socketio_max_connections=0)


def test_a_copy_changes_a_section_by_its_flat_name() -> None:
    settings = Settings(_env_file=None)
    copy = settings.model_copy(update={"auth_rate_limit_per_account": "1/minute", "env": "test"})
    assert (copy.auth.rate_limit_per_account, copy.env) == ("1/minute", "test")
    assert settings.auth.rate_limit_per_account == "10/minute"
    assert flat_names(SECTIONS["auth"])["auth_rate_limit_per_account"] == "rate_limit_per_account"
    with pytest.raises(ValueError, match="no such settings: graphql_max_dept"):
        settings.model_copy(update={"graphql_max_dept": 3})


def test_cors_origins_default_to_the_dev_web_app(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(web_port=3100).allowed_origins == [
        "http://localhost:3100",
        "http://127.0.0.1:3100",
        "http://localhost:3000",
        "http://127.0.0.1:3000",
    ]
    monkeypatch.setenv("HAUNTED_CORS_ORIGINS", '["https://app.example.com"]')
    assert load_settings().allowed_origins == ["https://app.example.com"]
    assert load_settings().otlp_endpoint is None
