"""haunted/reference/proposed.py: docs/events.md's table of the topics this project adds
is generated from the models, so a new topic is documented by its model alone."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from haunted.cli import app
from haunted.reference.proposed import (
    BEGIN,
    CONTRACT_EVENTS,
    END,
    EVENTS_DOC,
    StaleSection,
    additions,
    contract_topics,
    render,
    row,
    section,
    write,
)
from schemas import CATALOG, Audience, Event

ROOT = Path(__file__).resolve().parents[3]


def _topics(generated: str) -> list[str]:
    return [
        line.split("`")[1]
        for line in generated.splitlines()
        if line.startswith("| `") and "." in line.split("`")[1]
    ]


def test_the_committed_section_is_current() -> None:
    document = EVENTS_DOC.read_text()
    assert render(document) == document, "docs/events.md is stale: run `haunted docs events`"


def test_it_lists_every_topic_the_contract_lacks_and_no_other() -> None:
    contract = contract_topics(CONTRACT_EVENTS.read_text())
    assert len(contract) >= 20 and "user.registered" in contract, "the contract did not parse"
    listed = _topics(section())
    assert listed == [topic for topic in CATALOG if topic not in contract]
    assert listed, "the project adds topics; none were found"
    assert [model.topic for model in additions()] == listed


def test_a_topic_missing_from_the_contract_is_documented_by_construction() -> None:
    """What adding a model does: its topic is not in the contract, so its row appears."""
    contract = [topic for topic in contract_topics(CONTRACT_EVENTS.read_text())]
    contract.remove("user.registered")
    generated = section(contract)
    assert "user.registered" in _topics(generated)
    line = next(line for line in generated.splitlines() if "`user.registered`" in line)
    model = CATALOG["user.registered"]
    assert f"| {model.source} | {model.key_field} | {model.audience} | v1" in line
    assert model.__doc__ is not None and model.__doc__.split()[0] in line


def test_a_row_has_the_versions_fields_and_allowed_values() -> None:
    cells = row(CATALOG["webhook.endpoint_changed"])
    topic, owner, key, audience, versions, data, description = cells
    assert (topic, owner, key, audience) == (
        "`webhook.endpoint_changed`",
        "webhooks",
        "team_id",
        "team",
    )
    assert versions.startswith("v1")
    assert "change (`created`, `updated`, `deleted`, `secret_rotated`, `disabled`)" in data
    assert "by_user_id?" in data and "team_id," in data
    assert description.startswith("A team's webhook endpoint was created")


def test_a_model_without_a_docstring_is_refused_with_its_name() -> None:
    class Undocumented(Event):
        source: ClassVar[str] = "auth"
        topic: ClassVar[str] = "user.undocumented"
        key_field: ClassVar[str] = "user_id"
        audience: ClassVar[Audience] = Audience.USER
        user_id: str

    with pytest.raises(StaleSection, match=r"Undocumented \(user\.undocumented\) has no docstring"):
        row(Undocumented)


def test_a_stale_table_is_rewritten_and_only_the_section(tmp_path: Path) -> None:
    path = tmp_path / "events.md"
    stale = f"# Events\n\nwritten by people\n\n{BEGIN}\n\n| old | table |\n\n{END}\n\nafter\n"
    path.write_text(stale)
    assert write(path, check=True) is False
    assert path.read_text() == stale, "--check writes nothing"
    assert write(path) is False
    rewritten = path.read_text()
    assert rewritten.startswith("# Events\n\nwritten by people\n\n")
    assert rewritten.endswith(f"{END}\n\nafter\n")
    assert "| old | table |" not in rewritten
    assert _topics(rewritten) == [model.topic for model in additions()]
    assert write(path, check=True) is True


@pytest.mark.parametrize(
    "document", ["no markers", f"{BEGIN}\nonly the start", f"{BEGIN}{END}{BEGIN}{END}"]
)
def test_a_broken_section_is_a_clear_error(document: str) -> None:
    with pytest.raises(StaleSection, match="exactly one generated section"):
        render(document)


def test_the_command_checks_the_committed_doc() -> None:
    before = EVENTS_DOC.read_text()
    result = CliRunner().invoke(app, ["docs", "events", "--check"])
    assert result.exit_code == 0, result.output
    assert "current" in result.output
    assert EVENTS_DOC.read_text() == before
