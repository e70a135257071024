"""RS256 access tokens: signed with the newest key, verified with any published one."""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import JWTError, jwk, jwt

from events.metrics import TOKENS_ISSUED, TOKENS_VERIFIED
from services.errors import Unauthenticated

ALGORITHM = "RS256"
_VALID = TOKENS_VERIFIED.labels("valid")
_CACHED = TOKENS_VERIFIED.labels("cached")
_INVALID = TOKENS_VERIFIED.labels("invalid")


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    private_pem: bytes
    public_pem: bytes

    @property
    def kid(self) -> str:
        return hashlib.sha256(self.public_pem).hexdigest()[:16]


def generate_signing_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(
        private_pem=private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public_pem=private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: datetime


class TokenIssuer:
    """Keys are parsed once, here; signing and verifying never touch the disk."""

    def __init__(
        self,
        signing: SigningKey,
        *,
        verify_only: list[bytes] | None = None,
        issuer: str,
        audience: str,
        ttl: timedelta,
        cache_size: int = 10_000,
    ) -> None:
        self._kid = signing.kid
        self._signer = jwk.construct(signing.private_pem.decode(), ALGORITHM)
        public_pems = [signing.public_pem, *(verify_only or [])]
        self._verifiers = {
            hashlib.sha256(pem).hexdigest()[:16]: jwk.construct(pem.decode(), ALGORITHM)
            for pem in public_pems
        }
        self._jwks = {
            "keys": [
                self._jwk(kid, pem) for kid, pem in zip(self._verifiers, public_pems, strict=True)
            ]
        }
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl
        self._cache_size = cache_size
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    @staticmethod
    def _jwk(kid: str, public_pem: bytes) -> dict[str, str]:
        public = serialization.load_pem_public_key(public_pem)
        assert isinstance(public, rsa.RSAPublicKey)
        numbers = public.public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": ALGORITHM,
            "kid": kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def jwks(self) -> dict[str, Any]:
        return self._jwks

    def issue(self, user_id: str, session_id: str) -> tuple[str, datetime]:
        now = datetime.now(UTC)
        expires_at = now + self._ttl
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": user_id,
            "sid": session_id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": str(uuid.uuid4()),
        }
        token = jwt.encode(claims, self._signer, algorithm=ALGORITHM, headers={"kid": self._kid})
        TOKENS_ISSUED.inc()
        return token, expires_at.replace(microsecond=0)

    def verify(self, token: str) -> AccessClaims:
        """Checks signature (RS256 only), issuer, audience and expiry.

        A token verified before is answered from a bounded cache until it
        expires: the same string, so the same signature, so the same answer.
        """
        cached = self._verified.get(token)
        if cached is not None:
            if cached.expires_at > datetime.now(UTC):
                self._verified.move_to_end(token)
                _CACHED.inc()
                return cached
            del self._verified[token]
        try:
            claims = self._verify(token)
        except Exception:
            _INVALID.inc()
            raise
        _VALID.inc()
        self._verified[token] = claims
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return claims

    def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            # A kid that is an object or a list is refused like an unknown one (not a 500).
            key = self._verifiers.get(kid) if isinstance(kid, str) else None
            if key is None or header.get("alg") != ALGORITHM:
                raise Unauthenticated("unknown signing key")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require_sub": True,
                    "require_exp": True,
                    "require_iat": True,
                    "require_aud": True,
                    "require_iss": True,
                    "require_jti": True,
                },
            )
        except JWTError as error:
            raise Unauthenticated("invalid token") from error
        if not isinstance(claims.get("sid"), str):
            raise Unauthenticated("invalid token")
        return AccessClaims(
            claims["sub"], claims["sid"], datetime.fromtimestamp(claims["exp"], UTC)
        )
