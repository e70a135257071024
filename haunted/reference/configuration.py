"""The configuration reference, from `Settings`: every HAUNTED_* variable."""

from __future__ import annotations

import json
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from haunted.reference.markdown import (
    code,
    dedent_docstring,
    front_matter,
    repository_path,
    table,
)
from haunted.settings import Settings, variable_of

# Sections of the page, by the first words of a field's name: the order is the page's.
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Process",
        (
            "env",
            "host",
            "port",
            "forwarded_",
            "metrics_",
            "data_dir",
            "log_",
            "otlp_",
            "trace_",
            "worker_port",
            "slow_query_",
        ),
    ),
    ("Stores", ("database_", "redis_")),
    ("Kafka", ("kafka_", "embedded_kafka_")),
    ("Outbox and consumers", ("outbox_", "consumer_", "processed_events_", "dlq_")),
    (
        "Auth",
        (
            "jwt_",
            "access_token_",
            "refresh_token_",
            "session_",
            "permissions_",
            "bcrypt_",
            "lockout_",
            "auth_",
            "invite_",
            "pii_",
            "require_email_",
        ),
    ),
    ("GraphQL", ("graphql_",)),
    ("Web app and browsers", ("web_", "cors_")),
    ("Real time", ("socketio_", "subscription_", "presence_")),
    ("Analytics", ("analytics_",)),
    ("Billing", ("plans_", "stripe_", "billing_")),
    ("LLM gateway", ("openai_", "llm_")),
    ("Feature flags", ("unleash_", "flags_")),
    ("Mail", ("smtp_", "mail_")),
    ("Webhooks", ("webhooks_",)),
)
OTHER = "Other"


def variable(name: str) -> str:
    return f"HAUNTED_{name.upper()}"


def section_of(name: str) -> str:
    for title, prefixes in SECTIONS:
        if any(name == p or name.startswith(p) for p in prefixes):
            return title
    return OTHER


def type_text(annotation: Any) -> str:
    """What a value looks like in the environment."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(code(str(a)) for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        text = " or ".join(type_text(a) for a in inner)
        return text + " (optional)" if len(inner) < len(args) else text
    if origin is dict:
        return "JSON object"
    if origin in (list, tuple):
        return "JSON list"
    if annotation is SecretStr:
        return "secret"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if annotation is float:
        return "number"
    if annotation is Path:
        return "path"
    if annotation is str:
        return "string"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(code(str(m.value)) for m in annotation)
    return str(annotation)


def bounds_text(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        if isinstance(item, Ge):
            parts.append(f"≥ {item.ge}")
        elif isinstance(item, Gt):
            parts.append(f"> {item.gt}")
        elif isinstance(item, Le):
            parts.append(f"≤ {item.le}")
        elif isinstance(item, Lt):
            parts.append(f"< {item.lt}")
    return ", ".join(parts)


def default_value(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def default_text(field: FieldInfo) -> str:
    value = default_value(field)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return code("true" if value else "false")
    if isinstance(value, Path):
        return code(repository_path(value))
    if isinstance(value, dict | list | tuple):
        return code(json.dumps(value, separators=(", ", ": ")))
    return code(str(value))


def _section_model(field: FieldInfo) -> type[BaseSettings] | None:
    """The settings class of a field that is a section of its own (`settings.llm`)."""
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
        return annotation
    return None


def settings_fields() -> list[tuple[str, FieldInfo]]:
    """(HAUNTED_* variable, field) for every setting, sections' fields flattened."""
    found: list[tuple[str, FieldInfo]] = []
    for name, field in Settings.model_fields.items():
        section = _section_model(field)
        if section is None:
            found.append((variable(name), field))
            continue
        found += [(variable_of(section, inner), f) for inner, f in section.model_fields.items()]
    return found


def rows() -> list[tuple[str, str, FieldInfo]]:
    """(section, variable, field) for every setting, in page order."""
    order = [title for title, _ in SECTIONS] + [OTHER]
    found = [
        (section_of(name.removeprefix("HAUNTED_").lower()), name, field)
        for name, field in settings_fields()
    ]
    return sorted(found, key=lambda row: order.index(row[0]))  # stable: class order within


def page() -> str:
    out = [front_matter("Configuration", 1, description="Every HAUNTED_* variable.")]
    out.append(dedent_docstring(Settings.__doc__) + "\n")
    current = None
    section_rows: list[tuple[str, ...]] = []

    def flush() -> None:
        if current is not None:
            out.append(f"## {current}\n")
            out.append(table(("variable", "type", "default", "example", "meaning"), section_rows))

    for section, name, field in rows():
        if section != current:
            flush()
            current, section_rows = section, []
        kind = type_text(field.annotation)
        bounds = bounds_text(field)
        example = ", ".join(code(str(e)) for e in field.examples or ())
        section_rows.append(
            (
                code(name),
                f"{kind} ({bounds})" if bounds else kind,
                default_text(field),
                example,
                field.description or "",
            )
        )
    flush()
    return "\n".join(out)
