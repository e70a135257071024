"""`haunted new service NAME` (haunted/scaffold.py): run into a copy of the checkout,
then the checks `make test` runs, in that copy, pass for the new service."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from haunted.cli import app
from haunted.scaffold import ScaffoldError, new_service, validate
from haunted.settings import ROOT

BIN = Path(sys.executable).parent
# What the new service's checks read: the generated tests, and the tests of what must
# agree with the declarations (SPECS, the catalog, the docs, the migrations).
AGREEMENT_TESTS = (
    "tests/haunted/test_services.py",
    "tests/schemas/test_catalog.py",
    "tests/haunted/reference/test_proposed.py",
    # A team topic names its push permission (on the model, not in a gateway map).
    "tests/gateway/test_live_authorisation.py::"
    "test_every_pushable_team_or_public_topic_names_the_permission_it_needs",
    "tests/test_docs.py",
    "tests/haunted/test_migrations.py",
)


def copy_of_checkout(to: Path) -> Path:
    """The checkout's files as they are now (tracked and new, not ignored), without the
    web app and the docs site (the scaffold touches neither)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in listed:
        name = raw.decode()
        if not name or name.startswith(("web/", "site/")) or not (ROOT / name).is_file():
            continue
        (to / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, to / name)
    if (ROOT / ".mypy_cache").is_dir():  # only what the scaffold changed is checked again
        shutil.copytree(ROOT / ".mypy_cache", to / ".mypy_cache")
    return to


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".mypy_cache" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield copy_of_checkout(tmp_path_factory.mktemp("checkout"))


def run(root: Path, *command: str) -> None:
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, env=os.environ)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("Reports", "not a service name"),
        ("2fa", "not a service name"),
        ("sales-leads", "not a service name"),
        ("double__underscore", "not a service name"),
        ("class", "keyword"),
        ("json", "standard module"),
        ("events", "taken by the project"),
        ("billing", "exists already"),
        ("webhooks", "exists already"),
        ("a" * 25, "longer than"),
    ],
)
def test_a_bad_name_is_refused_and_writes_nothing(checkout: Path, name: str, says: str) -> None:
    before = tree_digest(checkout)
    with pytest.raises(ScaffoldError, match=says):
        new_service(name, checkout)
    assert tree_digest(checkout) == before


def test_the_cli_refuses_in_one_line_with_status_2() -> None:
    result = CliRunner().invoke(app, ["new", "service", "Not-A-Name"])
    assert result.exit_code == 2
    assert "not a service name" in result.output
    with pytest.raises(ScaffoldError):  # and the real checkout has no such service
        validate("auth", ROOT)


@pytest.mark.slow  # a copy of the checkout, mypy, and the new service's tests on both backends
def test_a_new_service_passes_the_checks_make_test_runs(checkout: Path) -> None:
    written = new_service("sales_leads", checkout)
    relative = {str(path.relative_to(checkout)) for path in written}
    assert {
        "services/sales_leads/service.py",
        "services/sales_leads/handlers.py",
        "services/sales_leads/models.py",
        "schemas/sales_leads.py",
        "gateway/schema/sales_leads.graphql",
        "tests/services/sales_leads/test_sales_leads.py",
        "haunted/services.py",
        "pyproject.toml",
        "schemas/__init__.py",
        "docs/events.md",
        "docs/features.md",
    } <= relative
    assert (checkout / "schemas/snapshots/sales_leads.item_added.v1.json").is_file()
    # Its fields call the facade's methods of their names: no resolver module is written.
    assert not (checkout / "gateway/resolvers/sales_leads.py").exists()
    assert (
        "async def sales_leads_summary("
        in (checkout / "services/sales_leads/service.py").read_text()
    )
    # Its topic is proposed to the contract by its model: the row is generated, not written.
    events_doc = (checkout / "docs/events.md").read_text()
    assert "| `sales_leads.item_added` | sales_leads | team_id | team | v1 |" in events_doc
    assert any(name.endswith("_sales_leads_items_tallies.py") for name in relative)
    with pytest.raises(ScaffoldError, match="exists already"):  # a second run: refused
        new_service("sales_leads", checkout)

    python = sys.executable
    run(checkout, python, "-m", "ruff", "check", ".")
    run(checkout, python, "-m", "ruff", "format", "--check", ".")
    run(checkout, python, "-m", "mypy")
    run(checkout, str(BIN / "lint-imports"))
    run(checkout, python, "-m", "schemas.snapshot", "--check")
    # The GraphQL reference reads the bound-by-name fields' guards from the facade.
    guard = (
        "from haunted.reference.graphql import guards; found = guards(); "
        "assert found[('Query', 'salesLeadsSummary')].permissions == {'team:read'}, found; "
        "assert found[('Mutation', 'addSalesLeadsItem')].permissions == {'team:read'}"
    )
    run(checkout, python, "-c", guard)
    run(
        checkout,
        python,
        "-m",
        "pytest",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        "tests/services/sales_leads",
        *AGREEMENT_TESTS,
    )
