"""Personal data at rest: AES-GCM ciphertext, found by a keyed hash.

Each ciphertext carries the id of the key that sealed it, so keys can rotate:
the first key of the ring seals, every key of the ring opens. The lookup hash
(HMAC-SHA256) has its own key, which does not rotate with the ring.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


class KeyRingError(ValueError):
    pass


def parse_key_ring(spec: str) -> dict[str, bytes]:
    """Reads "kid:base64key,kid2:base64key" (32-byte keys); the first one seals."""
    ring: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kid, sep, encoded = item.partition(":")
        if not sep or not kid:
            raise KeyRingError("each key is written kid:base64")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError as error:
            raise KeyRingError(f"key {kid} is not base64") from error
        if len(key) != 32:
            raise KeyRingError(f"key {kid} must be 32 bytes")
        ring[kid] = key
    if not ring:
        raise KeyRingError("no key")
    return ring


def new_key_ring_spec(kid: str = "k1") -> str:
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"


@dataclass(frozen=True, slots=True)
class Sealed:
    key_id: str
    ciphertext: bytes


class PiiCipher:
    def __init__(self, ring: Mapping[str, bytes], lookup_key: bytes) -> None:
        if len(lookup_key) < 32:
            raise KeyRingError("the lookup key must be at least 32 bytes")
        self._current = next(iter(ring))
        self._ciphers = {kid: AESGCM(key) for kid, key in ring.items()}
        self._lookup_key = lookup_key

    def seal(self, plaintext: str, *, context: str) -> Sealed:
        """`context` (e.g. "email") is bound as associated data: a ciphertext
        moved to another column does not open."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._current].encrypt(nonce, plaintext.encode(), context.encode())
        return Sealed(self._current, nonce + sealed)

    def open(self, sealed: Sealed, *, context: str) -> str:
        cipher = self._ciphers.get(sealed.key_id)
        if cipher is None:
            raise KeyRingError(f"no key {sealed.key_id} in the ring")
        nonce, body = sealed.ciphertext[:_NONCE_BYTES], sealed.ciphertext[_NONCE_BYTES:]
        return cipher.decrypt(nonce, body, context.encode()).decode()

    def lookup_hash(self, value: str, *, context: str) -> str:
        digest = hmac.new(self._lookup_key, f"{context}\0{value}".encode(), hashlib.sha256)
        return digest.hexdigest()


class DataKeyErased(KeyRingError):
    """The user's data key was deleted (the user was erased): what it sealed stays sealed."""


def seal_with(key: bytes, plaintext: str, *, context: str) -> bytes:
    """AES-GCM with a user's data key; `context` bound as associated data, as in
    `PiiCipher.seal`."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())


def open_with(key: bytes, ciphertext: bytes, *, context: str) -> str:
    nonce, body = ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:]
    return AESGCM(key).decrypt(nonce, body, context.encode()).decode()


def token_hash(token: str) -> str:
    """For high-entropy secrets (refresh tokens, invites, API keys): a plain SHA-256
    is enough at rest, and cheap enough to check on every request."""
    return hashlib.sha256(token.encode()).hexdigest()
