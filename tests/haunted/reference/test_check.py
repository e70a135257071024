"""haunted/reference/check.py: a built site missing a page or an entry fails, naming it."""

from __future__ import annotations

import json
from pathlib import Path

from haunted.reference import commands, configuration, graphql
from haunted.reference.catalog import page_name
from haunted.reference.check import missing
from haunted.reference.markdown import REPOSITORY, slug
from schemas import CATALOG


def _html(ids: list[str], text: str = "", rows: tuple[str, ...] | list[str] = ()) -> str:
    headings = "".join(f'<h2 id="{anchor}">{anchor}</h2>' for anchor in ids)
    # As the production build writes them: minified, without closing tags.
    table = "".join(f"<tr><td><code>{row}</code><td>meaning" for row in rows)
    return f"<html><body>{headings}<p>{text}</p><table>{table}</table></body></html>"


def build_site(root: Path) -> Path:
    """The pages a complete build has, as the production build names them."""
    (root / "reference" / "graphql").mkdir(parents=True)
    (root / "reference" / "events").mkdir()
    names = [name for _, name, _ in configuration.rows()]
    (root / "reference" / "configuration.html").write_text(_html([], rows=names))
    cli = [slug(path) for path, _ in commands.commands()]
    (root / "reference" / "commands.html").write_text(_html(cli))
    pages = {"Query": "queries", "Mutation": "mutations", "Subscription": "subscriptions"}
    fields: dict[str, list[str]] = {page: [] for page in pages.values()}
    for root_type, field in graphql.root_fields():
        fields[pages[root_type]].append(slug(field))
    for page, anchors in fields.items():
        (root / "reference" / "graphql" / f"{page}.html").write_text(_html(anchors))
    for topic in CATALOG:
        (root / "reference" / "events" / f"{page_name(topic)}.html").write_text(_html([], topic))
    (root / "docs").mkdir()
    for guide in (REPOSITORY / "docs").glob("*.md"):
        (root / "docs" / f"{guide.stem}.html").write_text(_html(["a-heading"]))
    (root / "asyncapi.json").write_text("{}")
    routes = [str(path.relative_to(root).with_suffix("")) for path in root.rglob("*.html")]
    index = [{"documents": [{"i": n, "t": r, "u": f"/{r}"} for n, r in enumerate(routes)]}]
    (root / "search-index.json").write_text(json.dumps(index))
    return root


def test_a_complete_build_passes(tmp_path: Path) -> None:
    assert missing(build_site(tmp_path)) == []


def test_each_missing_entry_is_named(tmp_path: Path) -> None:
    site = build_site(tmp_path)
    # Named in a description is not documented: the variable needs its own row.
    (site / "reference" / "configuration.html").write_text(
        _html([], "see HAUNTED_ENV", rows=["HAUNTED_PORT"])
    )
    (site / "reference" / "graphql" / "mutations.html").write_text(_html(["login"]))
    (site / "reference" / "events" / "user-logged-in.html").unlink()
    problems = missing(site)
    assert "setting HAUNTED_ENV is not on reference/configuration" in problems
    assert "Mutation.register has no heading on reference/graphql/mutations" in problems
    assert "Mutation.login has no heading on reference/graphql/mutations" not in problems
    assert "no page reference/events/user-logged-in" in problems


def test_a_page_missing_from_the_search_index_is_named(tmp_path: Path) -> None:
    site = build_site(tmp_path)
    (site / "search-index.json").write_text(json.dumps([{"documents": []}]))
    problems = missing(site)
    assert "reference/configuration is not in the search index" in problems
