"""`haunted new service NAME`: a new service in the declared shape, from templates.

It writes the package (facade, one event, one handler registered by its class, the
tables), its event's model, its Alembic branch, its GraphQL type and fields, its
tests and a docs entry; then adds what must still be listed: its `ServiceSpec` line
(haunted/services.py), the independence contract (pyproject.toml), its module among
the catalog's owners (schemas/__init__.py). Then it writes the event's snapshot,
regenerates docs/events.md's table of the topics the project adds (its new row is
read from the model) and formats what it wrote with ruff. `make test`
passes after it.

A bad name changes nothing: every check runs before the first write.
"""

from __future__ import annotations

import keyword
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ariadne import convert_camel_case_to_snake
from jinja2 import Environment, PackageLoader, StrictUndefined

NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
MAX_NAME = 24
# Names a service may not take: the project's own modules beside the services' (in
# services/, schemas/, gateway/resolvers/), its packages, and gateway.Services' own
# attributes (a facade is read as `services.<name>`).
RESERVED = frozenset(
    {"base", "common", "errors", "events", "exports", "principal", "snapshot"}
    | {"gateway", "haunted", "schemas", "services", "tests"}
    | {"graphql", "get", "items", "keys", "values"}
)
MIGRATIONS = Path("infra/migrations/versions")


class ScaffoldError(ValueError):
    """A name the scaffold refuses, or a checkout it cannot add to: nothing was written."""


@dataclass(frozen=True, slots=True)
class Names:
    name: str  # snake_case: the package, the consumer group, the event's source

    @property
    def Name(self) -> str:  # the CamelCase form, as the templates name it
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def camel(self) -> str:
        return self.Name[0].lower() + self.Name[1:]

    @property
    def event(self) -> str:
        return f"{self.Name}ItemAdded"

    @property
    def topic(self) -> str:
        return f"{self.name}.item_added"


def validate(name: str, root: Path) -> Names:
    """The name's forms, or ScaffoldError saying why the name cannot be a service."""
    if not NAME.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a service name: lowercase letters, digits and single "
            "underscores, starting with a letter (e.g. reports, sales_leads)"
        )
    if len(name) > MAX_NAME:
        raise ScaffoldError(f"{name!r} is longer than {MAX_NAME} characters")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in sys.stdlib_module_names:
        raise ScaffoldError(f"{name!r} is a Python keyword or standard module: pick another")
    if name in RESERVED:
        raise ScaffoldError(f"{name!r} is taken by the project's own modules: pick another")
    names = Names(name)
    for path in targets(names, root, revision="").values():
        if path.exists():
            raise ScaffoldError(f"{name!r} exists already ({path.relative_to(root)})")
    services = (root / "haunted" / "services.py").read_text()
    if re.search(rf'ServiceSpec\(\s*"{name}"', services):
        raise ScaffoldError(f"{name!r} is declared already in haunted/services.py")
    if f'"{names.topic}"' in (root / "schemas" / "__init__.py").read_text():
        raise ScaffoldError(f"the topic {names.topic} exists already")
    return names


def targets(names: Names, root: Path, revision: str) -> dict[str, Path]:
    """Template -> the file it becomes."""
    name = names.name
    return {
        "schema.py.j2": root / "schemas" / f"{name}.py",
        "init.py.j2": root / "services" / name / "__init__.py",
        "service.py.j2": root / "services" / name / "service.py",
        "handlers.py.j2": root / "services" / name / "handlers.py",
        "models.py.j2": root / "services" / name / "models.py",
        "graphql.j2": root / "gateway" / "schema" / f"{name}.graphql",
        "test_service.py.j2": root / "tests" / "services" / name / f"test_{name}.py",
        "test_init.py.j2": root / "tests" / "services" / name / "__init__.py",
        **(
            {"migration.py.j2": root / MIGRATIONS / f"{revision}_items_tallies.py"}
            if revision
            else {}
        ),
    }


def next_revision(names: Names, root: Path) -> str:
    """An unused four-digit prefix, the next hundred after the highest."""
    prefixes = [
        int(match.group(1))
        for path in (root / MIGRATIONS).glob("*.py")
        if (match := re.match(r"(\d{4})_", path.name))
    ]
    return f"{(max(prefixes, default=0) // 100 + 1) * 100:04d}_{names.name}"


def _append_line(text: str, start: str, end: str, line: str, what: str) -> str:
    """Adds `line` at the end of the block of lines between the first `start` line and
    the next `end` line."""
    lines = text.splitlines(keepends=True)
    try:
        first = next(i for i, each in enumerate(lines) if each.rstrip("\n") == start) + 1
        last = next(i for i in range(first, len(lines)) if lines[i].rstrip("\n") == end)
    except StopIteration:
        raise ScaffoldError(f"cannot find {what}: was it reshaped?") from None
    return "".join([*lines[:last], line + "\n", *lines[last:]])


def _declare(text: str, names: Names) -> str:
    """haunted/services.py with the service imported and its ServiceSpec in SPECS."""
    name = names.name
    text = _names_statement(
        text,
        r"^from services import (\([^)]*\)|[^(\n]+)$",
        "from services import {}",
        name,
        "`from services import <services>` in haunted/services.py",
    )
    entry = (
        "    ServiceSpec(\n"
        f'        "{name}",\n'
        f'        lambda _settings, db, _redis: {{"{name}": {name}.{names.Name}Service(db)}},\n'
        f"        handlers=lambda _facades: {name}.HANDLERS,\n"
        f'        replay=lambda: {{"{name}": {name}.replay_target()}},\n'
        f'        migrations="{name}",\n'
        f'        graphql="{name}",\n'
        "    ),\n"
    )
    closing = "\n)\n\nNAMES: tuple[str, ...]"
    if text.count(closing) != 1:
        raise ScaffoldError("cannot find the end of SPECS in haunted/services.py")
    return text.replace(closing, "\n" + entry.rstrip("\n") + closing, 1)


def _names_statement(text: str, pattern: str, render: str, name: str, where: str) -> str:
    """`text` with `name` added to the one statement matching `pattern` (a list of
    names, on one line or in parentheses over several), re-rendered on one line for
    ruff to format."""
    matches = list(re.finditer(pattern, text, flags=re.MULTILINE))
    if len(matches) != 1:
        raise ScaffoldError(f"cannot find {where}: was it reshaped?")
    names = re.findall(r"\w+", matches[0].group(1))
    if name in names:
        raise ScaffoldError(f"{name!r} is listed already in {where}")
    statement = render.format(", ".join([*names, name]))
    return text[: matches[0].start()] + statement + text[matches[0].end() :]


def _catalog(text: str, names: Names) -> str:
    """schemas/__init__.py with the module imported and among the catalog's OWNERS."""
    text = _names_statement(
        text,
        r"^from schemas import (\([^)]*\)|[^(\n]+)$",
        "from schemas import {}",
        names.name,
        "`from schemas import <modules>` in schemas/__init__.py",
    )
    return _names_statement(
        text,
        r"^OWNERS = \(([^)]*)\)$",
        "OWNERS = ({})",
        names.name,
        "OWNERS in schemas/__init__.py",
    )


def _table_row(text: str, heading: str, row: str, before: str | None = None) -> str:
    """Adds a row to the Markdown table under `heading` (at its end, or before the first
    row starting with `before`)."""
    lines = text.splitlines(keepends=True)
    try:
        at = next(i for i, line in enumerate(lines) if line.rstrip("\n") == heading)
        first = next(i for i in range(at, len(lines)) if lines[i].startswith("|"))
    except StopIteration:
        raise ScaffoldError(f"cannot find the table under {heading!r}") from None
    end = first
    while end < len(lines) and lines[end].startswith("|"):
        if before is not None and lines[end].startswith(before):
            break
        end += 1
    return "".join([*lines[:end], row if row.endswith("\n") else row + "\n", *lines[end:]])


def new_service(name: str, root: Path, *, format_code: bool = True) -> list[Path]:
    """Writes the service `name` into the checkout at `root`; returns what it wrote or
    changed. ScaffoldError (nothing written) when the name or the checkout will not do."""
    names = validate(name, root)
    revision = next_revision(names, root)
    env = Environment(
        loader=PackageLoader("haunted", "templates/service"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - Python, GraphQL and Markdown, not HTML
    )
    values = {
        "name": names.name,
        "Name": names.Name,
        "camel": names.camel,
        "event": names.event,
        "topic": names.topic,
        # The facade methods the GraphQL fields bind to by name (gateway/conventions.py).
        "summary_method": convert_camel_case_to_snake(f"{names.camel}Summary"),
        "add_method": convert_camel_case_to_snake(f"add{names.Name}Item"),
        "revision": revision,
        "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.000000"),
    }
    # Every edit is computed before anything is written: a refusal writes nothing.
    files = {
        path: env.get_template(template).render(values)
        for template, path in targets(names, root, revision).items()
    }
    edits = {
        root / "haunted" / "services.py": lambda text: _declare(text, names),
        root / "pyproject.toml": lambda text: _append_line(
            text,
            "modules = [",
            "]",
            f'    "services.{names.name}",',
            "the independence contract in pyproject.toml",
        ),
        root / "schemas" / "__init__.py": lambda text: _catalog(text, names),
        root / "docs" / "features.md": lambda text: _table_row(
            text,
            "# What is built",
            env.get_template("docs_row.md.j2").render(values),
            before="| `haunted",
        ),
    }
    changed = {path: edit(path.read_text()) for path, edit in edits.items()}
    for path, text in [*files.items(), *changed.items()]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    python = [path for path in [*files, *changed] if path.suffix == ".py"]
    if format_code:
        _format(root, python)
    _snapshot(root)
    _events_doc(root)
    return [*files, *changed, root / "docs" / "events.md"]


def _format(root: Path, paths: list[Path]) -> None:
    """ruff (a dev dependency): sorted imports, then the project's format."""
    relative = [str(path.relative_to(root)) for path in paths if MIGRATIONS not in path.parents]
    ruff = [sys.executable, "-m", "ruff"]
    fix = [*ruff, "check", "-q", "--fix", "--select", "I,RUF022", *relative]
    subprocess.run(fix, cwd=root, check=True)  # noqa: S603 - our own interpreter and files
    subprocess.run([*ruff, "format", "-q", *relative], cwd=root, check=True)  # noqa: S603


def _snapshot(root: Path) -> None:
    """The new event's JSON Schema snapshot (schemas/snapshots/), as `make lint` checks."""
    subprocess.run([sys.executable, "-m", "schemas.snapshot"], cwd=root, check=True)


def _events_doc(root: Path) -> None:
    """The new topic's row among those the project adds (docs/events.md), generated from
    its model as `haunted docs events` does: in a new process, which imports the model."""
    generate = [sys.executable, "-m", "haunted.reference.proposed"]
    subprocess.run(generate, cwd=root, check=True)  # noqa: S603 - our own interpreter
