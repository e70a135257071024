"""The generated half of the docs site (`haunted docs site`): reference pages from the code.

`docs/` holds what people write; everything here is read from the code, so it
cannot drift: the configuration from `Settings`, the command line from the typer
app, the GraphQL API from `gateway/schema` and the resolvers' guards, the event
catalog from `schemas.CATALOG` and its snapshots, and the AsyncAPI document.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from haunted.reference.markdown import REPOSITORY, front_matter

README = REPOSITORY / "README.md"
BENCHMARKS = REPOSITORY / "bench" / "README.md"
DOCS_ROUTE = "/docs"
# Repository files the site renders elsewhere than docs/, by their path.
SITE_ROUTES = {"bench/README.md": "/reference/performance"}


class UnrenderableLink(ValueError):
    """The README links to a repository file the site does not render."""


def reference_pages() -> dict[str, str]:
    """Relative path -> Markdown of every generated reference page."""
    from haunted.reference import catalog, commands, configuration, graphql

    pages = {
        "configuration.md": configuration.page(),
        "commands.md": commands.page(),
        "performance.md": performance_page(BENCHMARKS.read_text()),
        "graphql/_category_.json": _category("GraphQL API", 3),
        "events/_category_.json": _category("Event catalog", 4),
    }
    pages.update(graphql.pages())
    pages.update(catalog.pages())
    return pages


def _category(label: str, position: int) -> str:
    return json.dumps({"label": label, "position": position}, indent=2) + "\n"


def performance_page(benchmarks: str) -> str:
    """bench/README.md, where the benchmarks and their figures are written, on the site."""
    body = re.sub(r"\A# .*\n", "", benchmarks)
    return front_matter(
        "Performance", 6, description="What make bench measures, and its figures."
    ) + ("From `bench/README.md`, beside the benchmarks it describes.\n\n" + body)


def home_page(readme: str) -> str:
    """The README as the site's home page: its links to docs/ become site routes."""

    def link(match: re.Match[str]) -> str:
        target = match.group(1)
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            return match.group(0)
        if target.startswith("docs/img/"):
            return f"]({'../../../' + target})"
        page = re.match(r"docs/([\w/-]+)\.md(#[\w-]+)?$", target)
        if page:
            return f"]({DOCS_ROUTE}/{page.group(1)}{page.group(2) or ''})"
        if target in SITE_ROUTES:
            return f"]({SITE_ROUTES[target]})"
        raise UnrenderableLink(f"README.md links to {target}, which the site does not render")

    body = re.sub(r"\]\(([^)\s]+)\)", link, readme)
    return "---\ntitle: Haunted\nhide_table_of_contents: true\n---\n\n" + body


def write_site(out: Path) -> list[Path]:
    """Writes the generated pages under `out` (emptied first); returns what it wrote."""
    from haunted.asyncapi import asyncapi_document

    if out.exists():
        shutil.rmtree(out)
    files: dict[Path, str] = {
        out / "reference" / name: text for name, text in reference_pages().items()
    }
    files[out / "static" / "asyncapi.json"] = json.dumps(asyncapi_document(), indent=2) + "\n"
    files[out / "pages" / "index.md"] = home_page(README.read_text())
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return sorted(files)
