"""Email normalization and personal data at rest."""

from __future__ import annotations

import os

import pytest

from services.auth import PiiCipher, new_key_ring_spec, normalize_email, parse_key_ring
from services.auth.crypto import KeyRingError, Sealed
from services.errors import BadUserInput


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Alice@Example.COM ", "alice@example.com"),
        ("ａｌｉｃｅ@example.com", "alice@example.com"),  # fullwidth: NFKC folds it
        ("bob@bücher.de", "bob@xn--bcher-kva.de"),
    ],
)
def test_normalize_email(raw: str, normalized: str) -> None:
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "\u0430dmin@example.com",  # Cyrillic a: a look-alike of admin@
        "no-at-sign",
        "a@b",
        "' OR 1=1 --@example.com",
        "robert'); DROP TABLE auth_users;--@x.io",
        "a..b@example.com",
        "x" * 400 + "@example.com",
        "a@-bad-.com",
    ],
)
def test_bad_emails_are_refused(raw: str) -> None:
    with pytest.raises(BadUserInput):
        normalize_email(raw)


def _cipher(spec: str | None = None) -> PiiCipher:
    return PiiCipher(parse_key_ring(spec or new_key_ring_spec()), os.urandom(32))


def test_sealed_email_opens_and_is_not_plaintext() -> None:
    cipher = _cipher()
    sealed = cipher.seal("alice@example.com", context="email")
    assert b"alice" not in sealed.ciphertext
    assert cipher.open(sealed, context="email") == "alice@example.com"
    assert cipher.seal("alice@example.com", context="email") != sealed  # fresh nonce


def test_ciphertext_moved_to_another_column_does_not_open() -> None:
    cipher = _cipher()
    sealed = cipher.seal("alice@example.com", context="email")
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
        cipher.open(sealed, context="name")


def test_rotation_keeps_old_ciphertexts_readable() -> None:
    old_spec = new_key_ring_spec("k1")
    old = _cipher(old_spec)
    sealed = old.seal("alice@example.com", context="email")
    lookup = os.urandom(32)
    rotated = PiiCipher(parse_key_ring(f"{new_key_ring_spec('k2')},{old_spec}"), lookup)
    assert rotated.open(sealed, context="email") == "alice@example.com"
    assert rotated.seal("x@y.io", context="email").key_id == "k2"
    with pytest.raises(KeyRingError):
        _cipher().open(Sealed("k9", sealed.ciphertext), context="email")


def test_lookup_hash_is_keyed_and_stable() -> None:
    cipher = _cipher()
    first = cipher.lookup_hash("alice@example.com", context="email")
    assert first == cipher.lookup_hash("alice@example.com", context="email")
    assert first != _cipher().lookup_hash("alice@example.com", context="email")


@pytest.mark.parametrize("spec", ["", "nokey", "k1:notbase64!", "k1:" + "QUJD"])
def test_bad_key_ring_is_refused(spec: str) -> None:
    with pytest.raises(KeyRingError):
        parse_key_ring(spec)
