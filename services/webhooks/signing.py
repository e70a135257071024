"""Standard Webhooks signatures, and the signing secrets sealed at rest.

A secret is `whsec_` + base64 of 24 random bytes. It must stay usable for
signing, so it is sealed (AES-GCM with the PII key ring the composition root
passes in: the first key seals, every key opens), never hashed. The endpoint's
id is bound as associated data, so a sealed secret copied to another row does
not open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Iterable, Mapping

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "whsec_"
_SECRET_BYTES = 24
_NONCE_BYTES = 12


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(_SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64 HMAC-SHA256>` over `id.timestamp.body` (the spec's signed content)."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: Iterable[str], message_id: str, timestamp: int, body: bytes) -> str:
    """Every active secret's signature, space-separated: a receiver that knows either
    secret verifies it during a rotation's overlap."""
    return " ".join(signature(secret, message_id, timestamp, body) for secret in secrets)


class SecretBox:
    """Seals and opens signing secrets with the PII key ring."""

    def __init__(self, ring: Mapping[str, bytes]) -> None:
        if not ring:
            raise ValueError("the key ring is empty")
        self._current = next(iter(ring))
        self._ciphers = {kid: AESGCM(key) for kid, key in ring.items()}

    def seal(self, secret: str, endpoint_id: str) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE_BYTES)
        aad = f"webhook-secret:{endpoint_id}".encode()
        return self._current, nonce + self._ciphers[self._current].encrypt(
            nonce, secret.encode(), aad
        )

    def open(self, key_id: str, sealed: bytes, endpoint_id: str) -> str:
        nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        aad = f"webhook-secret:{endpoint_id}".encode()
        return self._ciphers[key_id].decrypt(nonce, body, aad).decode()
