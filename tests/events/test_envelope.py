"""The CloudEvents codec (events/envelope.py) against events.md's envelope table."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import FrozenInstanceError, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from events.broker import KafkaProducer, KafkaSettings
from events.envelope import Envelope, MalformedEvent
from schemas import UserLocked, UserLoggedIn, UserLoginFailed
from tests.events.conftest import read_all

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def valid_headers() -> dict[str, str]:
    return Envelope.wrap(UserLoggedIn(user_id="u1", session_id="s1")).headers()


VALID_VALUE = b'{"user_id":"u1","session_id":"s1"}'


def test_headers_follow_the_contract() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone(timedelta(hours=2)))
    envelope = Envelope.wrap(
        UserLoggedIn(user_id="u1", session_id="s1"), time=moment, traceparent="00-abc-def-01"
    )
    headers = envelope.headers()
    assert set(headers) == {
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "content-type",
        "ce_dataschema",
        "traceparent",
    }
    assert headers["ce_specversion"] == "1.0"
    assert str(uuid.UUID(headers["ce_id"])) == headers["ce_id"]
    assert headers["ce_source"] == "haunted/auth"
    assert headers["ce_type"] == "user.logged_in"
    # Any zone in, UTC with Z out.
    assert headers["ce_time"] == "2024-05-06T05:08:09.123000Z"
    assert headers["ce_subject"] == "u1"
    assert headers["content-type"] == "application/json"
    assert headers["ce_dataschema"] == "urn:haunted:user.logged_in:v1"
    assert headers["traceparent"] == "00-abc-def-01"
    assert envelope.key == b"u1"
    assert json.loads(envelope.value()) == {"user_id": "u1", "session_id": "s1"}


def test_each_event_gets_its_own_id_and_a_utc_time() -> None:
    event = UserLoggedIn(user_id="u1", session_id="s1")
    first, second = Envelope.wrap(event).headers(), Envelope.wrap(event).headers()
    assert first["ce_id"] != second["ce_id"]
    assert RFC3339_UTC.match(first["ce_time"]), first["ce_time"]
    assert "traceparent" not in first


def test_optional_fields_left_unset_are_omitted() -> None:
    envelope = Envelope.wrap(UserLoginFailed(reason="unknown_email", attempt=1))
    assert json.loads(envelope.value()) == {"reason": "unknown_email", "attempt": 1}
    # No user: the contract's key is `unknown`.
    assert envelope.headers()["ce_subject"] == "unknown"
    assert envelope.key == b"unknown"


def test_times_in_data_are_rfc3339_utc() -> None:
    until = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    data = json.loads(Envelope.wrap(UserLocked(user_id="u1", locked_until=until)).value())
    assert data == {"user_id": "u1", "locked_until": "2024-01-02T03:04:05Z"}
    decoded = Envelope.from_record(
        valid_headers() | {"ce_type": "user.locked"}, json.dumps(data).encode()
    ).decode()
    assert decoded == UserLocked(user_id="u1", locked_until=until)


def test_unknown_fields_in_data_are_ignored_on_decode() -> None:
    value = b'{"user_id":"u1","session_id":"s1","browser":"phone","extra":{"a":1}}'
    event = Envelope.from_record(valid_headers(), value).decode()
    assert event == UserLoggedIn(user_id="u1", session_id="s1")


async def test_round_trip_through_a_real_kafka_record(
    kafka_settings: KafkaSettings, producer: KafkaProducer
) -> None:
    sent = Envelope.wrap(UserLoggedIn(user_id="u1", session_id="s1"), traceparent="00-t-p-01")
    await producer.publish(sent)

    (record,) = await read_all(kafka_settings, "user.logged_in")
    assert record.key == b"u1"
    assert json.loads(record.value or b"") == {"user_id": "u1", "session_id": "s1"}
    received = Envelope.from_record(record.headers, record.value)
    assert (received.id, received.type, received.source, received.subject) == (
        sent.id,
        sent.type,
        sent.source,
        sent.subject,
    )
    assert received.time == sent.time
    assert received.data == sent.data
    assert received.dataschema == sent.dataschema
    assert received.traceparent == "00-t-p-01"
    assert received.decode() == UserLoggedIn(user_id="u1", session_id="s1")


@pytest.mark.parametrize(
    "name", ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"]
)
def test_a_missing_header_is_malformed(name: str) -> None:
    headers = valid_headers()
    del headers[name]
    with pytest.raises(MalformedEvent, match=name):
        Envelope.from_record(headers, VALID_VALUE)


@pytest.mark.parametrize(
    ("changes", "value", "message"),
    [
        ({"ce_specversion": "0.3"}, VALID_VALUE, "ce_specversion"),
        ({"ce_time": "yesterday"}, VALID_VALUE, "RFC 3339"),
        ({"ce_time": "2024-01-01T00:00:00"}, VALID_VALUE, "time zone"),
        ({}, b"{not json", "not JSON"),
        ({}, b"\xff\xfe", "not JSON"),
        ({}, b"", "not JSON"),
        ({}, b'[{"user_id":"u1","session_id":"s1"}]', "not a JSON object"),
        ({}, b'"u1"', "not a JSON object"),
    ],
)
def test_off_contract_records_are_malformed(
    changes: dict[str, str], value: bytes, message: str
) -> None:
    with pytest.raises(MalformedEvent, match=message):
        Envelope.from_record(valid_headers() | changes, value)


def test_headers_that_are_not_utf8_are_malformed() -> None:
    pairs = [(name, value.encode()) for name, value in valid_headers().items()]
    pairs.append(("ce_subject", b"\xff"))
    with pytest.raises(MalformedEvent, match="UTF-8"):
        Envelope.from_record(pairs, VALID_VALUE)


def test_an_unknown_type_is_malformed() -> None:
    envelope = Envelope.from_record(valid_headers() | {"ce_type": "user.teleported"}, VALID_VALUE)
    with pytest.raises(MalformedEvent, match="unknown event type"):
        envelope.decode()


@pytest.mark.parametrize(
    "value",
    [
        b'{"user_id":"u1"}',  # a required field missing
        b'{"user_id":"u1","session_id":["s1"]}',  # a field of the wrong type
        b'{"user_id":null,"session_id":"s1"}',
    ],
)
def test_data_that_fails_the_model_is_malformed(value: bytes) -> None:
    envelope = Envelope.from_record(valid_headers(), value)
    with pytest.raises(MalformedEvent, match=r"does not match user\.logged_in"):
        envelope.decode()


def test_a_naive_time_in_data_is_malformed() -> None:
    headers = valid_headers() | {"ce_type": "user.locked"}
    value = b'{"user_id":"u1","locked_until":"2024-01-02T03:04:05"}'
    with pytest.raises(MalformedEvent, match=r"does not match user\.locked"):
        Envelope.from_record(headers, value).decode()


def test_to_push_is_the_runtime_shape() -> None:
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    envelope = Envelope.wrap(UserLoggedIn(user_id="u1", session_id="s1"), time=moment)
    assert envelope.to_push() == {
        "id": envelope.id,
        "type": "user.logged_in",
        "source": "haunted/auth",
        "time": "2024-01-02T03:04:05Z",
        "subject": "u1",
        "data": {"user_id": "u1", "session_id": "s1"},
    }


def test_sealed_fields_are_never_pushed() -> None:
    locked = UserLocked(
        user_id="u1",
        locked_until=datetime(2024, 1, 2, tzinfo=UTC),
        address_key_id="k1",
        sealed_address="c2VhbGVk",
    )
    envelope = Envelope.wrap(locked)
    assert envelope.data["sealed_address"] == "c2VhbGVk"  # the services get it
    assert envelope.to_push()["data"] == {"user_id": "u1", "locked_until": "2024-01-02T00:00:00Z"}


def test_a_decoded_envelope_equals_one_built_and_stays_frozen() -> None:
    """from_record fills the slots directly (faster than the dataclass's __init__):
    the result must be the same envelope, and as immutable."""
    built = Envelope.wrap(UserLoggedIn(user_id="u1", session_id="s1"), traceparent="00-a-b-01")
    pairs = [(name, value.encode()) for name, value in built.headers().items()]
    decoded = Envelope.from_record([*pairs, ("x-extra", b"1")], built.value())
    assert decoded == replace(built, extra_headers={"x-extra": "1"})
    assert decoded.raw_value == built.value()
    with pytest.raises(FrozenInstanceError):
        decoded.id = "other"  # type: ignore[misc]


def test_decode_many_validates_lists_per_type_and_isolates_invalid_records() -> None:
    logins = [Envelope.wrap(UserLoggedIn(user_id="u1", session_id=f"s{n}")) for n in range(4)]
    lock = Envelope.wrap(UserLocked(user_id="u1", locked_until=datetime.now(UTC)))
    invalid = Envelope.from_record(valid_headers(), b'{"user_id":"u1"}')
    unknown = Envelope.from_record(valid_headers() | {"ce_type": "user.teleported"}, VALID_VALUE)
    batch = [logins[0], lock, logins[1], invalid, logins[2], unknown, logins[3]]

    results = Envelope.decode_many(batch)

    assert len(results) == len(batch)
    for envelope, result in zip(batch, results, strict=True):
        if envelope in (invalid, unknown):
            assert isinstance(result, MalformedEvent)
        else:
            assert result == envelope.decode()
    assert "does not match user.logged_in" in str(results[3])
    assert "unknown event type" in str(results[5])
    assert Envelope.decode_many([]) == []
