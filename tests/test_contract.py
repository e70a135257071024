"""The public contract, kept in the repository, is the one the project serves."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COPY = ROOT / "docs" / "contract"
# Where the contract's owners publish it, beside a checkout of this repository.
UPSTREAM = ROOT.parent / "shared" / "contract"


@pytest.mark.parametrize("name", ["events.md", "runtime.md", "schema.graphql", "web.md"])
def test_repository_copy_matches_the_published_contract(name: str) -> None:
    copy = (COPY / name).read_text()
    assert copy.strip()
    if UPSTREAM.is_dir():
        assert copy == (UPSTREAM / name).read_text(), f"docs/contract/{name} drifted"


def test_gateway_serves_the_contract_schema_verbatim() -> None:
    served = (ROOT / "gateway" / "schema" / "contract.graphql").read_text()
    assert served == (COPY / "schema.graphql").read_text()
