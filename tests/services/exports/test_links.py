"""services/exports/links.py: what a link's signature covers, and when it expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.exports import ExportLinks, LinkExpired, LinkRefused

KEY = bytes(range(32))
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
EXPIRES = int((NOW + timedelta(minutes=15)).timestamp())


def test_a_genuine_link_is_good_until_its_expiry_then_gone() -> None:
    links = ExportLinks(KEY)
    signature = links.signature("export-id-0123456789", EXPIRES)
    assert links.check("export-id-0123456789", str(EXPIRES), signature, NOW) == EXPIRES
    just_before = datetime.fromtimestamp(EXPIRES - 1, UTC)
    assert links.check("export-id-0123456789", str(EXPIRES), signature, just_before) == EXPIRES
    with pytest.raises(LinkExpired):
        links.check("export-id-0123456789", str(EXPIRES), signature, NOW + timedelta(minutes=15))


@pytest.mark.parametrize(
    ("export_id", "expires", "signature"),
    [
        ("export-id-0123456780", str(EXPIRES), None),  # another export's id
        ("export-id-0123456789", str(EXPIRES + 60), None),  # a later expiry
        ("export-id-0123456789", str(EXPIRES), "A" * 43),  # a made-up signature
        ("export-id-0123456789", str(EXPIRES), ""),
        ("export-id-0123456789", "-1", None),
        ("export-id-0123456789", "1e9", None),
        ("export-id-0123456789", "9" * 40, None),  # oversized
        ("export-id-0123456789", str(EXPIRES), "é" * 43),  # not ASCII
    ],
)
def test_a_changed_or_made_up_link_is_refused_whatever_its_time(
    export_id: str, expires: str, signature: str | None
) -> None:
    links = ExportLinks(KEY)
    genuine = links.signature("export-id-0123456789", EXPIRES)
    long_after = NOW + timedelta(days=365)
    for now in (NOW, long_after):
        with pytest.raises(LinkRefused):
            links.check(export_id, expires, genuine if signature is None else signature, now)


def test_another_key_signs_differently_and_short_keys_are_refused() -> None:
    assert ExportLinks(KEY).signature("x", 1) != ExportLinks(bytes(32)).signature("x", 1)
    with pytest.raises(ValueError, match="32 bytes"):
        ExportLinks(b"short")
