"""The models of schemas/ against the catalog of the event contract (events.md)."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import schemas
from haunted.services import NAMES
from schemas import CATALOG, Event, NotificationRequested, UserLoginFailed

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONTRACT = DOCS / "contract" / "events.md"
# The project's own catalog: the contract's topics plus additions proposed to it.
PROJECT = DOCS / "events.md"
# Every topic belongs to one of the declared services.
SERVICES = set(NAMES)


@dataclass(frozen=True)
class Row:
    topic: str
    keys: tuple[str, ...]  # the key field, then any fallback fields
    unknown_key: bool  # "or `unknown`": the key when the field is absent
    audience: str
    fields: dict[str, bool]  # name -> optional


def parse_catalog(text: str, heading: str = "## Catalog", owner: bool = False) -> dict[str, Row]:
    """The `## Catalog` table: | `type` | key | audience | data fields (`?` = optional) |
    (docs/events.md's generated table has an owner column after the type, and the
    versions and the description around the data)."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if "." not in cells[0]:
            continue  # another table of the section (a topic always has a dot)
        if owner:
            cells = [cells[0], cells[2], cells[3], cells[5]]
        topic, key, audience, data = cells
        fields: dict[str, bool] = {}
        # Parenthesized text is commentary; "x? or y?" is two optional fields.
        for token in re.split(r",|\bor\b", re.sub(r"\([^)]*\)", "", data)):
            name = token.strip()
            if name:
                fields[name.rstrip("?")] = name.endswith("?")
        key_words = re.findall(r"[a-z_]+", key.replace("`unknown`", ""))
        rows[topic.strip("`")] = Row(
            topic=topic.strip("`"),
            keys=tuple(word for word in key_words if word != "or"),
            unknown_key="`unknown`" in key,
            audience=audience,
            fields=fields,
        )
    return rows


@pytest.fixture(scope="module")
def contract() -> dict[str, Row]:
    assert CONTRACT.exists(), f"the event contract is missing: {CONTRACT}"
    rows = parse_catalog(CONTRACT.read_text(encoding="utf-8"))
    assert len(rows) >= 20, "the catalog table did not parse"
    return rows


@pytest.fixture(scope="module")
def additions(contract: dict[str, Row]) -> dict[str, Row]:
    """Topics the project added beyond the published contract: documented in
    docs/events.md (and proposed to the contract). That table is generated from the
    models (haunted/reference/proposed.py), so reading it back here checks the
    generator writes each model's row as the contract would."""
    rows = parse_catalog(PROJECT.read_text(encoding="utf-8"), "## The catalog", owner=True)
    assert not set(contract) & set(rows), "docs/events.md lists only what the contract lacks"
    return rows


def models() -> list[type[Event]]:
    return list(CATALOG.values())


def model_id(model: type[Event]) -> str:
    return model.topic


def test_every_contract_topic_has_a_model_and_no_more(
    contract: dict[str, Row], additions: dict[str, Row]
) -> None:
    assert sorted(CATALOG) == sorted({**contract, **additions})


def test_the_parser_reads_the_odd_rows(contract: dict[str, Row]) -> None:
    assert contract["user.login_failed"] == Row(
        "user.login_failed",
        ("user_id",),
        True,
        "internal",
        {"user_id": True, "reason": False, "attempt": False},
    )
    assert contract["notification.requested"].keys == ("user_id", "team_id")
    assert contract["notification.requested"].fields["team_id"] is True
    assert "count" in contract["flag.evaluated"].fields
    assert contract["session.revoked"].fields["session_id"] is True


@pytest.mark.parametrize("model", models(), ids=model_id)
def test_model_matches_its_contract_row(
    model: type[Event], contract: dict[str, Row], additions: dict[str, Row]
) -> None:
    row = contract.get(model.topic) or additions[model.topic]
    assert CATALOG[model.topic] is model
    assert model.key_field == row.keys[0]
    assert str(model.audience) == row.audience
    optional = {name: not info.is_required() for name, info in model.model_fields.items()}
    # Every contract field, as required as the contract says; the project may add
    # fields of its own, but only optional ones (events.md: topics may gain fields).
    assert {name: optional.get(name) for name in row.fields} == row.fields
    added = set(optional) - set(row.fields)
    assert all(optional[name] for name in added), f"added fields must be optional: {added}"
    assert set(row.keys) <= set(optional), "a key must be a data field"


@pytest.mark.parametrize("model", models(), ids=model_id)
def test_model_belongs_to_a_haunted_service(model: type[Event]) -> None:
    assert model.source in SERVICES
    assert model.dataschema() == f"urn:haunted:{model.topic}:v{model.version}"
    assert model.version >= 1


@pytest.mark.parametrize("model", models(), ids=model_id)
def test_field_types_follow_the_contract_conventions(model: type[Event]) -> None:
    """All ids are strings; times are RFC 3339; money is integer cents; no secrets."""
    properties: dict[str, Any] = model.model_json_schema()["properties"]
    for name, schema in properties.items():
        types = [
            {k: v for k, v in option.items() if k not in ("title", "default")}
            for option in schema.get("anyOf", [schema])
            if option != {"type": "null"}
        ]
        if name.endswith("_id"):
            assert types == [{"type": "string"}], name
        if name.endswith(("_at", "_until", "_end")):
            assert types == [{"type": "string", "format": "date-time"}], name
        if name.endswith("_cents"):
            assert types == [{"type": "integer"}], name
        words = set(name.split("_"))
        assert not words & {"password", "token", "secret", "email", "jwt"}, name


def test_optional_fields_default_to_absent() -> None:
    for model in models():
        for name, info in model.model_fields.items():
            if not info.is_required():
                assert info.default is None, f"{model.topic}.{name}"


def test_absent_keys_fall_back_as_the_contract_says(contract: dict[str, Row]) -> None:
    assert contract["user.login_failed"].unknown_key
    assert UserLoginFailed(reason="unknown_email", attempt=1).key() == "unknown"
    assert UserLoginFailed(user_id="u1", reason="bad_password", attempt=2).key() == "u1"
    assert contract["notification.requested"].keys == ("user_id", "team_id")
    to_team = NotificationRequested(team_id="t1", type="billing", title="Card expires")
    assert to_team.key() == "t1"
    assert NotificationRequested(user_id="u1", type="t", title="x").key() == "u1"


def test_every_model_is_in_its_modules_events_and_every_module_is_an_owner() -> None:
    """A model left out of its module's EVENTS (or a module left out of OWNERS) would
    have no topic, no consumer and no push: silently dropped. Found by reading the
    modules, so forgetting the list fails here."""
    folder = Path(schemas.__file__).parent
    modules = {
        path.stem: importlib.import_module(f"schemas.{path.stem}")
        for path in folder.glob("*.py")
        if path.stem not in ("__init__", "base", "snapshot")
    }
    assert {module.__name__ for module in schemas.OWNERS} == {
        module.__name__ for module in modules.values()
    }
    for module in modules.values():
        defined = {
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, Event)
            and value.__module__ == module.__name__
            and "topic" in vars(value)
        }
        assert defined == set(module.EVENTS), module.__name__
