"""The README documents every setting and every command the code has."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.main import get_command_name

from haunted.cli import app
from haunted.settings import variables

README = Path(__file__).resolve().parents[1] / "README.md"
# Pages whose "## Configuration" / "## Command line" tables add to the README's (the
# README is being cut down to a landing page: new reference rows go to docs/).
PAGES = (README, README.parent / "docs" / "deploy.md")


def _section(title: str) -> str:
    found = []
    for page in PAGES:
        text = page.read_text()
        start = text.find(f"## {title}\n")
        if start == -1:
            continue
        end = text.find("\n## ", start + 1)
        found.append(text[start:] if end == -1 else text[start:end])
    assert found, f"no page has a {title} section"
    return "\n".join(found)


def _first_cells(section: str) -> list[str]:
    """The first cell of every table row, without the header and divider rows."""
    return [
        line.split("|")[1].strip()
        for line in section.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]


def _cli_commands(group: typer.Typer, prefix: str = "haunted") -> list[str]:
    commands = [
        f"{prefix} {command.name or get_command_name(command.callback.__name__)}"
        for command in group.registered_commands
        if command.callback is not None
    ]
    for sub in group.registered_groups:
        assert sub.typer_instance is not None and sub.name is not None
        commands += _cli_commands(sub.typer_instance, f"{prefix} {sub.name}")
    return commands


def test_configuration_table_lists_every_setting() -> None:
    documented = set(
        re.findall(r"`(HAUNTED_[A-Z0-9_]+)`", "\n".join(_first_cells(_section("Configuration"))))
    )
    expected = variables()
    assert expected - documented == set(), "settings missing from README's configuration table"
    assert documented - expected == set(), "README documents settings that do not exist"


def test_command_table_lists_every_command() -> None:
    rows = [re.sub(r"`", "", cell) for cell in _first_cells(_section("Command line"))]
    commands = _cli_commands(app)
    assert {"haunted dev", "haunted replay", "haunted keys rotate", "haunted flags list"} <= set(
        commands
    )
    missing = [c for c in commands if not any(re.match(rf"{re.escape(c)}(\s|$)", r) for r in rows)]
    assert missing == [], "commands missing from README's command table"
