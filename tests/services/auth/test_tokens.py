"""Access tokens: RS256 only, every claim checked, keys parsed once."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import pytest
from jose import jwt

from services.auth import SigningKey, TokenIssuer, generate_signing_key
from services.errors import Unauthenticated


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return generate_signing_key()


@pytest.fixture(scope="module")
def issuer(key: SigningKey) -> TokenIssuer:
    return TokenIssuer(key, issuer="haunted", audience="haunted", ttl=timedelta(hours=24))


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "haunted",
        "aud": "haunted",
        "sub": "u1",
        "sid": "s1",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "jti": "j1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: SigningKey, claims: dict[str, object], **headers: str) -> str:
    return jwt.encode(
        claims, key.private_pem.decode(), algorithm="RS256", headers={"kid": key.kid, **headers}
    )


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_issued_token_verifies_with_every_claim(issuer: TokenIssuer, key: SigningKey) -> None:
    token, expires_at = issuer.issue("u1", "s1")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == key.kid
    claims = jwt.get_unverified_claims(token)
    assert {"iss", "aud", "sub", "sid", "exp", "iat", "nbf", "jti"} <= set(claims)
    verified = issuer.verify(token)
    assert (verified.user_id, verified.session_id) == ("u1", "s1")
    assert int(expires_at.timestamp()) == claims["exp"]


def test_jwks_publishes_the_public_key(issuer: TokenIssuer, key: SigningKey) -> None:
    (jwk,) = issuer.jwks()["keys"]
    assert jwk["kid"] == key.kid and jwk["alg"] == "RS256" and jwk["kty"] == "RSA"
    assert "d" not in jwk  # never the private exponent


def test_alg_none_is_refused(issuer: TokenIssuer, key: SigningKey) -> None:
    token = f"{_b64({'alg': 'none', 'kid': key.kid})}.{_b64(_claims())}."
    with pytest.raises(Unauthenticated):
        issuer.verify(token)


def test_hs256_signed_with_the_public_key_is_refused(issuer: TokenIssuer, key: SigningKey) -> None:
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "kid": key.kid, "typ": "JWT"})
    body = _b64(_claims())
    signature = hmac.new(key.public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    token = f"{header}.{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
    with pytest.raises(Unauthenticated):
        issuer.verify(token)


def test_unknown_kid_is_refused(issuer: TokenIssuer, key: SigningKey) -> None:
    with pytest.raises(Unauthenticated):
        issuer.verify(_sign(key, _claims(), kid="someone-else"))


def test_a_key_not_ours_is_refused(issuer: TokenIssuer, key: SigningKey) -> None:
    other = generate_signing_key()
    forged = jwt.encode(
        _claims(), other.private_pem.decode(), algorithm="RS256", headers={"kid": key.kid}
    )
    with pytest.raises(Unauthenticated):
        issuer.verify(forged)


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": int(time.time()) - 10},  # expired
        {"nbf": int(time.time()) + 3600},  # not yet valid
        {"iss": "someone-else"},
        {"aud": "someone-else"},
        {"sub": None},
        {"sid": None},
        {"exp": None},
    ],
    ids=["expired", "not-yet-valid", "wrong-iss", "wrong-aud", "no-sub", "no-sid", "no-exp"],
)
def test_bad_claims_are_refused(
    issuer: TokenIssuer, key: SigningKey, overrides: dict[str, object]
) -> None:
    with pytest.raises(Unauthenticated):
        issuer.verify(_sign(key, _claims(**overrides)))


def test_tampered_payload_is_refused(issuer: TokenIssuer) -> None:
    token, _ = issuer.issue("u1", "s1")
    header, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "admin"
    with pytest.raises(Unauthenticated):
        issuer.verify(f"{header}.{_b64(claims)}.{signature}")


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c", "x" * 5000, "Bearer abc"])
def test_garbage_is_refused(issuer: TokenIssuer, garbage: str) -> None:
    with pytest.raises(Unauthenticated):
        issuer.verify(garbage)


def test_rotated_out_key_still_verifies_until_dropped(key: SigningKey) -> None:
    old = TokenIssuer(key, issuer="haunted", audience="haunted", ttl=timedelta(hours=1))
    token, _ = old.issue("u1", "s1")
    new_key = generate_signing_key()
    rotated = TokenIssuer(
        new_key,
        verify_only=[key.public_pem],
        issuer="haunted",
        audience="haunted",
        ttl=timedelta(hours=1),
    )
    assert rotated.verify(token).user_id == "u1"
    assert jwt.get_unverified_header(rotated.issue("u2", "s2")[0])["kid"] == new_key.kid
    assert {k["kid"] for k in rotated.jwks()["keys"]} == {key.kid, new_key.kid}
    dropped = TokenIssuer(new_key, issuer="haunted", audience="haunted", ttl=timedelta(hours=1))
    with pytest.raises(Unauthenticated):
        dropped.verify(token)
