"""Committed JSON Schemas of the event contracts, and the rule for changing them.

Each catalog model is written to `snapshots/<topic>.v<version>.json`. Outside
consumers read the topics too, and a topic holds the records of every version
it ever had: a consumer still on an older model reads the newer records, and a
replay feeds the older records to the newer model. So a model must stay
compatible with *every* earlier version of its topic, not only its own (events.md:
fields are gained, never lost or retyped; key and audience never change). A
version bump records a compatible change worth naming; a breaking change is a
new topic (written alongside the old one while consumers move over).

Snapshots use pydantic's *validation* schema: it says what a record must hold
to be decodable, which is the question when a consumer replays old records
with a newer model; it also keeps `format: date-time` on timestamps, which the
serialization schema drops (they serialize through a plain function).

    python -m schemas.snapshot          # write new and compatibly changed snapshots
    python -m schemas.snapshot --check  # exit 1 if any snapshot is missing or stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas import CATALOG, Event

SNAPSHOTS = Path(__file__).parent / "snapshots"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_FILE_NAME = re.compile(r"^(?P<topic>.+)\.v(?P<version>\d+)\.json$")
# Words, not types: changing them changes no record.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated"})


class IncompatibleSnapshot(Exception):
    """A model changed incompatibly without a new version."""


def snapshot_path(topic: str, version: int, directory: Path = SNAPSHOTS) -> Path:
    return directory / f"{topic}.v{version}.json"


def schema_of(model: type[Event]) -> dict[str, Any]:
    """The JSON Schema of a topic's data, with the envelope facts consumers rely on."""
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": model.dataschema(),
        **schema,
        "x-haunted-topic": model.topic,
        "x-haunted-version": model.version,
        "x-haunted-source": f"haunted/{model.source}",
        "x-haunted-key": model.key_field,
        "x-haunted-audience": str(model.audience),
    }


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def committed(directory: Path = SNAPSHOTS) -> dict[tuple[str, int], Path]:
    """Every snapshot file, by (topic, version)."""
    found: dict[tuple[str, int], Path] = {}
    for path in sorted(directory.glob("*.json")):
        match = _FILE_NAME.match(path.name)
        if match:
            found[(match["topic"], int(match["version"]))] = path
    return found


def incompatibilities(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What in `new` breaks a reader or a record of `old`; empty when compatible.

    Flagged: a field removed, retyped (including no longer accepting null),
    made optional (a reader of the old schema may miss it) or made required
    (an old record may lack it); a new required field; a changed partition key.
    A new optional field, an open object field that names optional keys (and
    still takes others), or changed titles and descriptions, are compatible.
    """
    problems: list[str] = []
    old_fields, new_fields = _fields(old), _fields(new)
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name, old_type in old_fields.items():
        if name not in new_fields:
            problems.append(f"field {name!r} removed")
            continue
        new_type = new_fields[name]
        retyped = old_type.schema != new_type.schema and not _describes(old_type, new_type)
        if retyped or (old_type.nullable and not new_type.nullable):
            problems.append(f"field {name!r} retyped: {old_type} -> {new_type}")
        if name in old_required and name not in new_required:
            problems.append(f"field {name!r} made optional")
        elif name not in old_required and name in new_required:
            problems.append(f"field {name!r} made required")
    for name in new_fields.keys() - old_fields.keys():
        if name in new_required:
            problems.append(f"new field {name!r} is required")
    if old.get("x-haunted-key") != new.get("x-haunted-key"):
        problems.append(
            f"partition key changed: {old.get('x-haunted-key')} -> {new.get('x-haunted-key')}"
        )
    # Who may see the records (pushed to a user, a team, or nobody outside): a change
    # would push old records to new people, or hide new ones from old subscribers.
    if old.get("x-haunted-audience") != new.get("x-haunted-audience"):
        problems.append(
            f"audience changed: {old.get('x-haunted-audience')} -> {new.get('x-haunted-audience')}"
        )
    return problems


def against_every_version(
    model: type[Event], schema: Mapping[str, Any], directory: Path = SNAPSHOTS
) -> list[str]:
    """What `schema` breaks in each committed snapshot of its topic, this version and
    every earlier one (a later one is refused elsewhere)."""
    problems: list[str] = []
    for (topic, version), path in sorted(committed(directory).items()):
        if topic != model.topic or version > model.version:
            continue
        for problem in incompatibilities(load(path), schema):
            problems.append(problem if version == model.version else f"{problem} (vs v{version})")
    return problems


def check(model: type[Event], directory: Path = SNAPSHOTS) -> list[str]:
    """The model against every committed snapshot of its topic up to its version."""
    path = snapshot_path(model.topic, model.version, directory)
    if not path.exists():
        return [f"no snapshot {path.name}: run `python -m schemas.snapshot`"]
    return against_every_version(model, schema_of(model), directory)


def write_snapshots(
    catalog: Mapping[str, type[Event]] = CATALOG, directory: Path = SNAPSHOTS
) -> list[Path]:
    """Writes each model's snapshot if new or compatibly changed; returns those written.

    Raises IncompatibleSnapshot, writing nothing, if a model breaks a snapshot
    of its topic (its own version or an earlier one) or its version is older
    than a committed one.
    """
    errors: list[str] = []
    pending: list[tuple[Path, dict[str, Any]]] = []
    existing = committed(directory)
    for topic, model in catalog.items():
        newest = max((v for (t, v) in existing if t == topic), default=0)
        if model.version < newest:
            errors.append(f"{topic}: version {model.version} is older than snapshot v{newest}")
            continue
        path = snapshot_path(topic, model.version, directory)
        schema = schema_of(model)
        problems = against_every_version(model, schema, directory)
        if problems:
            errors.append(
                f"{topic} v{model.version}: {'; '.join(problems)} (a breaking change is a "
                "new topic, written alongside this one while consumers move over)"
            )
            continue
        if path.exists() and load(path) == schema:
            continue
        pending.append((path, schema))
    if errors:
        raise IncompatibleSnapshot("\n".join(errors))
    directory.mkdir(parents=True, exist_ok=True)
    for path, schema in pending:
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [path for path, _ in pending]


def audit(catalog: Mapping[str, type[Event]] = CATALOG, directory: Path = SNAPSHOTS) -> list[str]:
    """What `python -m schemas.snapshot` would write or refuse; empty when all is current."""
    problems = []
    for topic, model in catalog.items():
        path = snapshot_path(topic, model.version, directory)
        if not path.exists():
            problems.append(f"{path.name}: missing")
            continue
        old, new = load(path), schema_of(model)
        if breaks := against_every_version(model, new, directory):
            problems.append(f"{path.name}: incompatible: {'; '.join(breaks)}")
        elif old != new:
            problems.append(f"{path.name}: stale")
    return problems


class _Type:
    """One field's type, with `null` split off so that nullability compares on its own."""

    def __init__(self, schema: Any, nullable: bool) -> None:
        self.schema = schema
        self.nullable = nullable

    def __str__(self) -> str:
        text = json.dumps(self.schema, sort_keys=True)
        return f"{text} | null" if self.nullable else text


def _is_open_object(schema: Any) -> bool:
    return (
        isinstance(schema, dict)
        and schema.get("type") == "object"
        and schema.get("additionalProperties", True) is True
    )


def _describes(old: _Type, new: _Type) -> bool:
    """An open object (any keys) that now names some of its keys, all optional, and
    still takes any other: the same change as a new optional field on an event, one
    level down (an event's own schema is an open object too). An old reader still
    reads every new record; a new one reads the old records, whose keys were
    written by the same producer.
    """
    return (
        _is_open_object(old.schema)
        and set(old.schema) <= {"type", "additionalProperties"}
        and _is_open_object(new.schema)
        and set(new.schema) <= {"type", "additionalProperties", "properties"}
        and isinstance(new.schema.get("properties"), dict)
    )


def _fields(schema: Mapping[str, Any]) -> dict[str, _Type]:
    definitions = schema.get("$defs", {})
    return {
        name: _split_null(_normalize(prop, definitions, frozenset()))
        for name, prop in schema.get("properties", {}).items()
    }


def _normalize(node: Any, definitions: Mapping[str, Any], seen: frozenset[str]) -> Any:
    """Inlines $refs and drops annotations, leaving only what constrains a value."""
    if isinstance(node, list):
        return [_normalize(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        if name in seen:  # a recursive model: its name stands for its shape
            return {"$ref": name}
        return _normalize(definitions[name], definitions, seen | {name})
    return {
        key: _normalize(value, definitions, seen)
        for key, value in node.items()
        if key not in _ANNOTATIONS
    }


def _split_null(node: Any) -> _Type:
    if isinstance(node, dict) and isinstance(node.get("anyOf"), list):
        options = [o for o in node["anyOf"] if o != {"type": "null"}]
        if len(options) < len(node["anyOf"]):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            if len(options) == 1 and not rest:
                return _Type(options[0], nullable=True)
            return _Type({**rest, "anyOf": options}, nullable=True)
    return _Type(node, nullable=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.snapshot", description="Writes the event contracts' snapshots."
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a snapshot is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = audit()
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    try:
        written = write_snapshots()
    except IncompatibleSnapshot as error:
        print(error, file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
