"""The docs: the site's generated reference documents every setting and command the
code has, and the README is a landing page whose links the site can render."""

from __future__ import annotations

import re
from pathlib import Path

import typer
from typer.main import get_command_name

from haunted.cli import app
from haunted.reference import README, SITE_ROUTES, UnrenderableLink, configuration, home_page
from haunted.reference import commands as command_reference
from haunted.settings import variables

ROOT = Path(__file__).resolve().parents[1]


def _rows(page: str) -> list[list[str]]:
    """The cells of every table row, without the header and divider rows."""
    rows = []
    for line in page.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            if cells[0] != "variable":
                rows.append(cells)
    return rows


def _cli_commands(group: typer.Typer, prefix: str = "haunted") -> list[str]:
    """Every command, read from the typer app's registrations (not from the generator)."""
    commands = [
        f"{prefix} {command.name or get_command_name(command.callback.__name__)}"
        for command in group.registered_commands
        if command.callback is not None
    ]
    for sub in group.registered_groups:
        assert sub.typer_instance is not None and sub.name is not None
        commands += _cli_commands(sub.typer_instance, f"{prefix} {sub.name}")
    return commands


def test_configuration_reference_lists_every_setting_with_its_meaning() -> None:
    rows = _rows(configuration.page())
    documented = [re.sub(r"`", "", row[0]) for row in rows]
    expected = variables()
    assert sorted(documented) == sorted(expected), "the reference's settings are not Settings'"
    incomplete = [row[0] for row in rows if not (row[1] and row[2] and row[4])]
    assert incomplete == [], "settings without a type, default or meaning in the reference"


def test_every_setting_says_what_it_does() -> None:
    """The reference's meaning column is each field's description: give each Field one."""
    undescribed = [name for name, field in configuration.settings_fields() if not field.description]
    assert undescribed == [], "add description= to these fields in haunted/settings.py"


def test_configuration_reference_shows_types_defaults_and_bounds() -> None:
    rows = {re.sub(r"`", "", row[0]): row for row in _rows(configuration.page())}
    assert rows["HAUNTED_PORT"][1:3] == ["integer (≥ 1, ≤ 65535)", "`8000`"]
    assert rows["HAUNTED_ENV"][1] == "one of `dev`, `test`, `prod`"
    assert rows["HAUNTED_STRIPE_API_KEY"][1:3] == ["secret (optional)", "unset"]
    # Paths inside the checkout are said relative to it: the page is the same for everyone.
    assert rows["HAUNTED_FLAGS_FILE"][2] == "`infra/flags.json`"
    assert rows["HAUNTED_DATABASE_URL"][3] == "`postgresql+asyncpg://user:pw@db/haunted`"


def test_command_reference_lists_every_command() -> None:
    page = command_reference.page()
    headings = re.findall(r"^## (.+)$", page, flags=re.MULTILINE)
    commands = _cli_commands(app)
    assert {"haunted dev", "haunted replay", "haunted keys rotate", "haunted docs site"} <= set(
        commands
    )
    assert sorted(headings) == sorted(commands)
    assert "`--rebuild`" in page and "`SERVICE`" in page


def test_readme_is_a_landing_page_the_site_can_render() -> None:
    readme = README.read_text()
    assert len(readme) < 8_000, "README.md is a landing page: reference belongs in docs/"
    assert "```mermaid" in readme
    targets = re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local, "the README links to the guides"
    assert [t for t in local if not (ROOT / t).exists()] == []
    assert [t for t in local if not t.startswith("docs/") and t not in SITE_ROUTES] == []
    home = home_page(readme)
    assert "](/docs/quick-start)" in home


def test_a_readme_link_the_site_cannot_render_is_refused() -> None:
    try:
        home_page("see [the examples](examples/downstream_consumer.py)")
    except UnrenderableLink as error:
        assert "examples/downstream_consumer.py" in str(error)
    else:
        raise AssertionError("a link to a file the site does not render was accepted")
