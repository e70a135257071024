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

from haunted.settings import ConfigurationError, Settings, load_settings

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
    assert settings.kafka_bootstrap == "embedded"
    assert settings.uses_embedded_kafka
    assert settings.kafka_servers == "127.0.0.1:9092"
    assert settings.jwt_private_key_file is None and settings.jwt_public_key_file is None
    assert settings.keys_dir == Path(".haunted") / "keys"
    assert settings.stripe_api_key is None and settings.stripe_api_base is None
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
    assert settings.kafka_servers == "127.0.0.1:19092"
    monkeypatch.setenv("HAUNTED_KAFKA_BOOTSTRAP", "kafka-1:9092")
    settings = load_settings()
    assert not settings.uses_embedded_kafka
    assert settings.kafka_servers == "kafka-1:9092"


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
    assert settings.kafka_servers == "kafka-1:9092,kafka-2:9092"


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
    secret_fields = [name for name in Settings.model_fields if SECRET_FIELD.search(name)]
    assert {"stripe_api_key", "stripe_webhook_secret", "openai_api_key", "unleash_api_token"} <= (
        set(secret_fields)
    )
    for name in secret_fields:
        assert _is_secret(Settings.model_fields[name].annotation), f"{name} is not a SecretStr"


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


def test_service_sections_read_their_flat_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAUNTED_LLM_TIMEOUT_S", "7")
    monkeypatch.setenv("HAUNTED_ANALYTICS_TRACK_RATE_LIMIT", "5/minute")
    settings = load_settings(flags_default_plan="pro", llm_max_retries=0)
    assert (settings.llm.timeout_s, settings.llm.max_retries) == (7.0, 0)
    assert settings.analytics.track_rate_limit == "5/minute"
    assert settings.flags.default_plan == "pro"
    monkeypatch.setenv("HAUNTED_LLM_TIMEOUT_S", "0")
    with pytest.raises(ConfigurationError, match=r"^HAUNTED_LLM_TIMEOUT_S: "):
        load_settings()


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
