"""Committed schema snapshots (schemas/snapshot.py): a contract changes compatibly
within a version, or gets a new version."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from schemas import CATALOG, Audience, Entitlements, Event, SubscriptionActivated, Timestamp
from schemas.snapshot import (
    SNAPSHOTS,
    IncompatibleSnapshot,
    audit,
    check,
    committed,
    incompatibilities,
    load,
    schema_of,
    snapshot_path,
    write_snapshots,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("model", list(CATALOG.values()), ids=lambda m: m.topic)
def test_each_model_is_compatible_with_its_committed_snapshot(model: type[Event]) -> None:
    problems = check(model)
    assert not problems, (
        f"{model.topic} v{model.version} breaks its contract: {problems}. A breaking change "
        f"needs a new version: bump {model.__name__}.version and run `python -m schemas.snapshot`."
    )


def test_snapshots_are_current() -> None:
    assert audit() == [], "run `python -m schemas.snapshot` and commit schemas/snapshots/"


def test_every_snapshot_belongs_to_a_catalog_topic_at_or_below_its_version() -> None:
    snapshots = committed()
    assert snapshots, f"no snapshots in {SNAPSHOTS}"
    for topic, version in snapshots:
        # A topic never leaves the catalog, and a version never goes back.
        assert topic in CATALOG, f"{topic} was removed from the catalog"
        assert version <= CATALOG[topic].version, f"{topic} went back below v{version}"


def test_snapshot_files_say_what_they_describe() -> None:
    for model in CATALOG.values():
        snapshot = load(snapshot_path(model.topic, model.version))
        assert snapshot["$id"] == model.dataschema()
        assert snapshot["x-haunted-topic"] == model.topic
        assert snapshot["x-haunted-source"] == f"haunted/{model.source}"
        assert snapshot["x-haunted-key"] == model.key_field


def test_the_command_line_check_passes_on_the_committed_snapshots() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "schemas.snapshot", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# Small models for the comparison itself: one topic, changed in one way each.


class Before(Event):
    topic: ClassVar[str] = "test.thing"
    source: ClassVar[str] = "auth"
    key_field: ClassVar[str] = "thing_id"
    audience: ClassVar[Audience] = Audience.INTERNAL
    thing_id: str
    size: int
    happened_at: Timestamp
    note: str | None = None


class Removed(Event):
    topic: ClassVar[str] = "test.thing"
    source: ClassVar[str] = "auth"
    key_field: ClassVar[str] = "thing_id"
    audience: ClassVar[Audience] = Audience.INTERNAL
    thing_id: str
    happened_at: Timestamp
    note: str | None = None


class Retyped(Removed):
    size: str  # was int


class TimeRetyped(Removed):
    size: int
    happened_at: str  # type: ignore[assignment]  # was a timestamp


class MadeRequired(Removed):
    size: int
    note: str  # was optional


class MadeOptional(Removed):
    size: int | None = None


class NoLongerNullable(Removed):
    size: int
    note: str = ""  # was str | None


class NewRequired(Removed):
    size: int
    color: str


class NewOptional(Removed):
    """A new docstring and a new optional field: nothing breaks."""

    size: int
    color: str | None = None
    tags: list[str] | None = None


class KeyChanged(Removed):
    key_field: ClassVar[str] = "size"
    size: int


class Limits(BaseModel):
    model_config = ConfigDict(extra="allow")
    seats: int | None = None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seats: int | None = None


class NeedsSeats(BaseModel):
    model_config = ConfigDict(extra="allow")
    seats: int


class WithOpenObject(Removed):
    size: int
    limits: dict[str, Any] | None = None


class Described(WithOpenObject):
    limits: Limits | None = None  # type: ignore[assignment]


class DescribedAndClosed(WithOpenObject):
    limits: Strict | None = None  # type: ignore[assignment]


class DescribedWithRequired(WithOpenObject):
    limits: NeedsSeats | None = None  # type: ignore[assignment]


def test_an_open_object_that_names_optional_keys_and_stays_open_is_compatible() -> None:
    assert incompatibilities(schema_of(WithOpenObject), schema_of(Described)) == []


@pytest.mark.parametrize("model", [DescribedAndClosed, DescribedWithRequired])
def test_an_open_object_closed_or_with_a_required_key_is_retyped(model: type[Event]) -> None:
    problems = incompatibilities(schema_of(WithOpenObject), schema_of(model))
    assert problems and problems[0].startswith("field 'limits' retyped"), problems


def test_described_back_to_open_is_retyped() -> None:
    problems = incompatibilities(schema_of(Described), schema_of(WithOpenObject))
    assert problems and problems[0].startswith("field 'limits' retyped"), problems


def test_v1_subscription_records_read_with_the_typed_entitlements() -> None:
    """Records of v1, whose entitlements were an open object, decode with v2's model:
    the keys it names are typed, a key it does not know is kept, none is required."""
    base = {
        "team_id": "t1",
        "subscription_id": "sub_1",
        "plan_id": "pro",
        "status": "active",
        "current_period_end": "2026-01-01T00:00:00Z",
    }
    full = SubscriptionActivated.model_validate(
        {**base, "entitlements": {"llm_tokens_per_month": 5, "seats": 2, "later_limit": 7}}
    )
    assert full.entitlements is not None
    assert full.entitlements.llm_tokens_per_month == 5
    assert full.entitlements.llm_requests_per_minute is None
    assert full.entitlements.model_extra == {"later_limit": 7}
    assert SubscriptionActivated.model_validate({**base, "entitlements": {}}).entitlements
    assert SubscriptionActivated.model_validate(base).entitlements is None
    assert SubscriptionActivated.version == 2
    assert Entitlements(seats=3).model_dump(exclude_none=True) == {"seats": 3}


def diff(new: type[Event]) -> list[str]:
    return incompatibilities(schema_of(Before), schema_of(new))


def test_the_same_model_is_compatible() -> None:
    assert diff(Before) == []


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (Removed, ["field 'size' removed"]),
        (Retyped, ["field 'size' retyped"]),
        (TimeRetyped, ["field 'happened_at' retyped"]),
        (MadeRequired, ["field 'note' retyped", "field 'note' made required"]),
        (MadeOptional, ["field 'size' made optional"]),
        (NoLongerNullable, ["field 'note' retyped"]),
        (NewRequired, ["new field 'color' is required"]),
        (KeyChanged, ["partition key changed: thing_id -> size"]),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else "",
)
def test_breaking_changes_are_flagged(model: type[Event], expected: list[str]) -> None:
    problems = diff(model)
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problems


def test_a_new_optional_field_is_compatible() -> None:
    assert diff(NewOptional) == []


def test_write_refuses_an_incompatible_change_of_the_same_version(tmp_path: Path) -> None:
    assert write_snapshots({"test.thing": Before}, tmp_path) == [
        snapshot_path("test.thing", 1, tmp_path)
    ]
    path = snapshot_path("test.thing", 1, tmp_path)
    original = path.read_text()
    assert write_snapshots({"test.thing": Before}, tmp_path) == []  # unchanged: not rewritten

    with pytest.raises(IncompatibleSnapshot, match="field 'size' removed"):
        write_snapshots({"test.thing": Removed}, tmp_path)
    assert path.read_text() == original

    assert write_snapshots({"test.thing": NewOptional}, tmp_path) == [path]
    assert "color" in json.loads(path.read_text())["properties"]


def test_a_new_version_is_checked_against_every_earlier_version(tmp_path: Path) -> None:
    # The review's finding: a version bump skipped the check, and consumers still on
    # v1 dead-lettered the v2 records that lack `size`.
    write_snapshots({"test.thing": Before}, tmp_path)

    class RemovedV2(Removed):
        version: ClassVar[int] = 2

    with pytest.raises(IncompatibleSnapshot, match=r"field 'size' removed \(vs v1\)"):
        write_snapshots({"test.thing": RemovedV2}, tmp_path)
    assert set(committed(tmp_path)) == {("test.thing", 1)}

    class NewOptionalV2(NewOptional):
        version: ClassVar[int] = 2

    # A compatible change may take a new version: checked against v1, and v1 stays.
    assert write_snapshots({"test.thing": NewOptionalV2}, tmp_path) == [
        snapshot_path("test.thing", 2, tmp_path)
    ]
    assert set(committed(tmp_path)) == {("test.thing", 1), ("test.thing", 2)}
    assert check(NewOptionalV2, tmp_path) == []

    class RemovedV3(Removed):
        version: ClassVar[int] = 3
        color: str | None = None
        tags: list[str] | None = None

    assert check(RemovedV3, tmp_path) == [
        "no snapshot test.thing.v3.json: run `python -m schemas.snapshot`"
    ]
    with pytest.raises(IncompatibleSnapshot, match=r"removed \(vs v1\).*removed \(vs v2\)"):
        write_snapshots({"test.thing": RemovedV3}, tmp_path)
    # And the version cannot go back under the newest snapshot.
    with pytest.raises(IncompatibleSnapshot, match="older than snapshot v2"):
        write_snapshots({"test.thing": Before}, tmp_path)


class AudienceChanged(Before):
    audience: ClassVar[Audience] = Audience.USER


def test_an_audience_change_is_refused_even_with_a_new_version(tmp_path: Path) -> None:
    assert diff(AudienceChanged) == ["audience changed: internal -> user"]
    write_snapshots({"test.thing": Before}, tmp_path)

    class AudienceChangedV2(AudienceChanged):
        version: ClassVar[int] = 2

    with pytest.raises(IncompatibleSnapshot, match="audience changed"):
        write_snapshots({"test.thing": AudienceChangedV2}, tmp_path)


def test_snapshots_keep_timestamps_as_date_time() -> None:
    properties = schema_of(Before)["properties"]
    assert properties["happened_at"]["format"] == "date-time"
