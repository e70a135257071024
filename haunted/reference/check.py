"""Checks a built docs site: every setting, command, topic and root field has its page.

    python -m haunted.reference.check site/build

Reads the HTML the production build wrote, so a page that was generated but not
built (or built without the entry) fails here, naming what is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

from haunted.reference import catalog, commands, configuration, graphql
from haunted.reference.markdown import REPOSITORY, slug
from schemas import CATALOG


class _Anchors(HTMLParser):
    """Every element id of a page, its text, and the first cell of each table row."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.first_cells: list[str] = []
        self._cell: list[str] | None = None
        self._cells_in_row = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
        if tag in ("td", "th", "tr", "tbody", "thead"):
            self._end_cell()  # minified HTML leaves out the closing tags
        if tag == "tr":
            self._cells_in_row = 0
        elif tag == "td":
            self._cells_in_row += 1
            if self._cells_in_row == 1:
                self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "tr", "table"):
            self._end_cell()

    def _end_cell(self) -> None:
        if self._cell is not None:
            self.first_cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def _page(build: Path, route: str) -> _Anchors | None:
    for path in (build / f"{route}.html", build / route / "index.html"):
        if path.is_file():
            parser = _Anchors()
            parser.feed(path.read_text())
            return parser
    return None


def missing(build: Path) -> list[str]:
    """What has no page in the built site, one line each."""
    problems: list[str] = []

    checked: list[str] = []

    def page(route: str) -> _Anchors:
        checked.append(route)
        found = _page(build, route)
        if found is None:
            problems.append(f"no page {route}")
            return _Anchors()
        return found

    settings = set(page("reference/configuration").first_cells)
    problems += [
        f"setting {name} is not on reference/configuration"
        for _, name, _ in configuration.rows()
        if name not in settings
    ]
    cli = page("reference/commands").ids
    problems += [
        f"command {path} has no heading on reference/commands"
        for path, _ in commands.commands()
        if slug(path) not in cli
    ]
    for topic in CATALOG:
        route = f"reference/events/{catalog.page_name(topic)}"
        if topic not in "".join(page(route).text):
            problems.append(f"topic {topic} is not on {route}")
    roots = {"Query": "queries", "Mutation": "mutations", "Subscription": "subscriptions"}
    anchors = {name: page(f"reference/graphql/{name}").ids for name in roots.values()}
    problems += [
        f"{root}.{field} has no heading on reference/graphql/{roots[root]}"
        for root, field in graphql.root_fields()
        if slug(field) not in anchors[roots[root]]
    ]
    for guide in sorted((REPOSITORY / "docs").glob("*.md")):
        page(f"docs/{guide.stem}")  # every guide is built (docs/contract/ is not rendered)
    if not (build / "asyncapi.json").is_file():
        problems.append("no asyncapi.json")
    problems += _unsearchable(build, checked)
    return problems


def _unsearchable(build: Path, routes: list[str]) -> list[str]:
    """Pages the local search does not find (a `noindex` page is left out of its index)."""
    path = build / "search-index.json"
    if not path.is_file():
        return ["no search-index.json: the local search has no index"]
    indexed = {
        document.get("u", "").split("#")[0]
        for part in json.loads(path.read_text())
        for document in part.get("documents", [])
    }
    return [f"{route} is not in the search index" for route in routes if f"/{route}" not in indexed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", type=Path, help="the site's build directory")
    args = parser.parse_args()
    problems = missing(args.build)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print("every setting, command, topic and root field has its page")


if __name__ == "__main__":
    main()
