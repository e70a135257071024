"""The event catalog, from `schemas.CATALOG` and the committed JSON Schema snapshots."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events.broker import DLQ_SUFFIX
from events.envelope import Envelope
from haunted.reference.markdown import code, front_matter, table
from schemas import CATALOG, Audience, Event
from schemas.snapshot import SNAPSHOTS, load

FANOUT = "every gateway's fan-out consumer (no group, from the latest offset)"
EXAMPLE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# A fixed namespace: the examples are the same on every build.
EXAMPLE_NAMESPACE = uuid.UUID("6f9a4a8e-5d0b-4a47-9c1e-0b6d6c1e7a11")
# The headers a dead letter adds to the original record's (events/consumer.py).
DLQ_HEADERS = {
    "dlq_error": "the last error, `<ExceptionType>: <message>`, at most 1000 characters",
    "dlq_consumer": "the consumer (group `haunted.<consumer>`) that gave up",
    "dlq_topic": "the topic the record came from",
    "dlq_partition": "its partition there",
    "dlq_offset": "its offset there",
    "dlq_attempts": "how many times it was tried",
    "dlq_time": "when it was dead-lettered (RFC 3339 UTC)",
}


def page_name(topic: str) -> str:
    return topic.replace(".", "-").replace("_", "-")


def versions(topic: str) -> list[tuple[int, dict[str, Any]]]:
    """Every committed snapshot of a topic, oldest first."""
    found = []
    for path in SNAPSHOTS.glob(f"{topic}.v*.json"):
        schema = load(path)
        if schema.get("x-haunted-topic") == topic:
            found.append((int(schema["x-haunted-version"]), schema))
    return sorted(found, key=lambda pair: pair[0])


def _example_value(topic: str, name: str, schema: dict[str, Any]) -> Any:
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    spec = options[0] if options else {}
    if "enum" in spec:
        return spec["enum"][0]
    if "const" in spec:
        return spec["const"]
    kind = spec.get("type")
    if kind == "string":
        if spec.get("format") == "date-time":
            return EXAMPLE_TIME.isoformat().replace("+00:00", "Z")
        if name.endswith("_id") or name == "id":
            return str(uuid.uuid5(EXAMPLE_NAMESPACE, f"{topic}:{name}"))
        return name.replace("_", "-")
    if kind == "integer":
        return 1
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    return {}


def example(model: type[Event]) -> Envelope:
    """An example record of the topic, checked against the model: the required fields,
    and each optional one the model's own rules let stand beside them."""
    from pydantic import ValidationError

    schema = model.model_json_schema(mode="validation")
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    data = {
        name: _example_value(model.topic, name, prop)
        for name, prop in properties.items()
        if name in required
    }
    for name, prop in properties.items():
        if name in required:
            continue
        candidate = {**data, name: _example_value(model.topic, name, prop)}
        try:
            model.model_validate(candidate)
        except ValidationError:
            continue
        data = candidate
    event = model.model_validate(data)
    return Envelope.wrap(
        event,
        event_id=str(uuid.uuid5(EXAMPLE_NAMESPACE, model.topic)),
        time=EXAMPLE_TIME,
        traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    )


def example_record(model: type[Event]) -> dict[str, Any]:
    """The example as a Kafka record: key, headers, value."""
    envelope = example(model)
    return {
        "key": envelope.subject,
        "headers": envelope.headers(),
        "value": json.loads(envelope.value()),
    }


def consumer_groups() -> dict[str, list[str]]:
    """Topic -> the consumer groups (`haunted.<consumer>`) that read it.

    Read from `SPECS` with the facades a dev process builds (some groups, such as the
    email channel's, exist only with what they deliver through), in a throwaway data
    directory: nothing is connected to, and the keys dev generates go away with it.
    """
    import tempfile

    from events.db import Database
    from haunted.runtime import build_redis, build_services
    from haunted.services import SPECS, facades_of
    from haunted.settings import MEMORY, Settings

    with tempfile.TemporaryDirectory(prefix="haunted-docs-") as data:
        settings = Settings(
            env="dev",
            data_dir=Path(data),
            database_url=f"sqlite+aiosqlite:///{data}/unused.db",
            redis_url=MEMORY,
        )
        facades = facades_of(
            build_services(settings, Database(settings.database_url), build_redis(MEMORY))
        )
        found: dict[str, list[str]] = {}
        for spec in SPECS:
            for registry in spec.registries(facades):
                for topic in registry.topics:
                    found.setdefault(topic, []).append(f"haunted.{registry.consumer}")
    return found


def _fields(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        kinds = [o.get("format") or o.get("type", "any") for o in options]
        rows.append(
            (
                code(name),
                " or ".join(str(k) for k in kinds),
                "yes" if name in required else "no",
                prop.get("description", ""),
            )
        )
    return table(("field", "type", "required", "description"), rows)


def topic_page(model: type[Event], groups: list[str], position: int) -> str:
    topic = model.topic
    out = [front_matter(topic, position, description=(model.__doc__ or "").strip())]
    out.append((model.__doc__ or "").strip() + "\n")
    readers = [code(g) for g in groups]
    if model.audience != Audience.INTERNAL:
        readers.append(FANOUT)
    facts = [
        ("topic", code(topic)),
        ("dead letters", code(topic + DLQ_SUFFIX)),
        ("owner", f"the `{model.source}` service, `ce_source` {code('haunted/' + model.source)}"),
        ("key", f"{code(model.key_field)} (the value of `data.{model.key_field}`)"),
        (
            "audience",
            f"{code(str(model.audience))} ([who sees it pushed](/docs/events#the-catalog))",
        ),
        ("current version", f"{model.version} ({code(model.dataschema())})"),
        ("read by", ", ".join(readers) or "no consumer in Haunted"),
    ]
    out.append(table(("property", "value"), facts))
    history = versions(topic)
    out.append("## Versions\n")
    for version, schema in history:
        out.append(f"### v{version}\n")
        out.append(
            f"`schemas/snapshots/{topic}.v{version}.json`, `ce_dataschema` {code(schema['$id'])}.\n"
        )
        out.append(_fields(schema))
    out.append("## Schema\n")
    if history:
        out.append(f"The JSON Schema of `data` at v{history[-1][0]}:\n")
        out.append("```json\n" + json.dumps(history[-1][1], indent=2) + "\n```\n")
    out.append("## Example record\n")
    out.append(
        "A CloudEvent 1.0 in Kafka's binary content mode: the attributes travel as "
        "headers, `data` is the value, the subject is the key.\n"
    )
    record = example_record(model)
    out.append("```json\n" + json.dumps(record, indent=2) + "\n```\n")
    return "\n".join(out)


def index_page(groups: dict[str, list[str]]) -> str:
    out = [front_matter("Event catalog", 0, description="Every topic, its producer and readers.")]
    out.append(
        "Every topic of `schemas.CATALOG`. Each has a dead-letter twin `<topic>.dlq`, "
        "and the [AsyncAPI document](pathname:///asyncapi.json) describes them all "
        "for tools.\n"
    )
    rows = [
        (
            f"[{code(topic)}]({page_name(topic)}.md)",
            model.source,
            code(model.key_field),
            str(model.audience),
            str(model.version),
            ", ".join(code(g) for g in groups.get(topic, [])),
        )
        for topic, model in CATALOG.items()
    ]
    out.append(table(("topic", "owner", "key", "audience", "version", "consumer groups"), rows))
    return "\n".join(out)


def pages() -> dict[str, str]:
    groups = consumer_groups()
    found = {"events/index.md": index_page(groups)}
    for position, (topic, model) in enumerate(CATALOG.items(), start=1):
        found[f"events/{page_name(topic)}.md"] = topic_page(model, groups.get(topic, []), position)
    return found
