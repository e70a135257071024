"""haunted/reference/graphql.py: every field, argument and type, with what each field needs."""

from __future__ import annotations

import re

from haunted.reference.graphql import Guard, error_codes, guards, pages, root_fields
from services.errors import DomainError


def _section(page: str, heading: str) -> str:
    start = page.index(f"## {heading}\n")
    end = page.find("\n## ", start + 1)
    return page[start:] if end == -1 else page[start:end]


def test_every_root_field_has_a_section_with_its_signature() -> None:
    generated = pages()
    roots = {"Query": "queries", "Mutation": "mutations", "Subscription": "subscriptions"}
    for root, field in root_fields():
        section = _section(generated[f"graphql/{roots[root]}.md"], field)
        assert f"```graphql\n{field}" in section
        assert "**Needs:**" in section


def test_permissions_come_from_the_facades_guards() -> None:
    found = guards()
    assert found[("Query", "eventCounts")].permissions == {"analytics:read"}
    assert found[("Mutation", "changeRole")].permissions == {"team:manage"}
    assert found[("Mutation", "createCheckoutSession")].permissions == {"billing:manage"}
    assert found[("Subscription", "promptStream")].permissions == {"llm:call"}
    # A nested field's resolver is guarded too: a team's members need team:read in it.
    assert found[("Team", "members")].permissions == {"team:read"}
    # Signed in, without a team permission; and public.
    assert found[("Query", "sessions")] == Guard(signed_in=True)
    assert found[("Query", "plans")] == Guard()
    assert found[("Mutation", "login")] == Guard()


def test_the_needs_line_names_the_team_the_permission_is_checked_in() -> None:
    queries = pages()["graphql/queries.md"]
    assert (
        "**Needs:** `analytics:read` in the team `teamId` names, or else the caller's default team."
        in _section(queries, "eventCounts")
    )
    assert "`flags:read` in the caller's default team" in _section(queries, "isFeatureEnabled")
    assert "**Needs:** nothing: public." in _section(queries, "plans")


def test_arguments_show_their_types_and_defaults() -> None:
    funnel = _section(pages()["graphql/queries.md"], "funnel")
    assert "| `window` | `Int` | `604800` |" in funnel
    assert "[`[FunnelStep!]!`](types.md#funnelstep)" in funnel


def test_every_type_links_to_a_section_of_the_types_page() -> None:
    generated = pages()
    headings = set(re.findall(r"^## (\w+)$", generated["graphql/types.md"], flags=re.MULTILINE))
    linked = {
        name.lower()
        for page in generated.values()
        for name in re.findall(r"\(types\.md#(\w+)\)", page)
    }
    assert linked <= {heading.lower() for heading in headings}
    assert {"User", "Team", "Notification", "DateTime", "JSON"} <= headings


def test_every_error_code_is_described() -> None:
    codes = error_codes()
    domain = {error.code for error in DomainError.__subclasses__()}
    assert domain <= set(codes)
    assert {"INTERNAL", "PERSISTED_QUERY_NOT_FOUND", "PERSISTED_QUERY_NOT_SUPPORTED"} <= set(codes)
    assert [code for code, text in codes.items() if not text] == []
