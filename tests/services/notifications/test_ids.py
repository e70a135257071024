"""services/notifications/ids.py: ULIDs that sort by time and only grow per user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notifications.ids import decode, encode, is_notification_id, next_id

NOW = datetime(2030, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def test_ids_are_26_crockford_characters_that_round_trip() -> None:
    identifier = next_id(NOW)
    assert len(identifier) == 26
    assert is_notification_id(identifier)
    assert encode(decode(identifier)) == identifier
    assert decode(identifier) >> 80 == int(NOW.timestamp() * 1000)


def test_ids_sort_by_time_as_strings() -> None:
    earlier = next_id(NOW)
    later = next_id(NOW + timedelta(milliseconds=1))
    assert earlier < later


def test_the_next_id_of_a_user_is_above_their_last_even_when_the_clock_goes_back() -> None:
    last = next_id(NOW)
    for now in (NOW, NOW - timedelta(hours=1)):
        following = next_id(now, last)
        assert following > last
        last = following


def test_malformed_ids_are_refused() -> None:
    for text in (
        "",
        "x" * 26,
        "8" + "0" * 25,
        "0" * 25,
        "0" * 27,
        "0000000000000000000000000I",
        42,
    ):
        assert not is_notification_id(text)
    assert is_notification_id("0" * 26)
