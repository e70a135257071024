"""Password hashing: bcrypt, always off the event loop."""

from __future__ import annotations

import asyncio

from passlib.context import CryptContext


class PasswordHasher:
    """bcrypt over an HMAC-SHA256 pre-hash (passlib's bcrypt_sha256), so passwords
    longer than bcrypt's 72 bytes are neither truncated nor rejected."""

    def __init__(self, rounds: int = 12) -> None:
        self._context = CryptContext(
            schemes=["bcrypt_sha256", "bcrypt"],
            deprecated="auto",
            bcrypt_sha256__rounds=rounds,
            bcrypt__rounds=rounds,
        )
        # Verified against when the email is unknown, so both paths cost one bcrypt.
        self._decoy = self._context.hash("decoy password, never matches")

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._context.hash, password)

    async def verify(self, password: str, hashed: str | None) -> tuple[bool, str | None]:
        """Returns (matches, new hash if the stored one should be upgraded)."""
        if hashed is None:
            await asyncio.to_thread(self._context.verify, password, self._decoy)
            return False, None
        return await asyncio.to_thread(self._context.verify_and_update, password, hashed)
