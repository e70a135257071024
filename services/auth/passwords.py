"""Password hashing: bcrypt, always off the event loop."""

from __future__ import annotations

import asyncio
import functools
from importlib.resources import files

from passlib.context import CryptContext

from services.errors import BadUserInput


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


MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list, read once per process."""
    text = (files("services.auth") / "common_passwords.txt").read_text()
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def check_password_policy(password: str) -> None:
    """At least 10 and at most 1,024 characters, and not a well-known password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadUserInput(
            f"password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadUserInput(
            f"password must have at most {MAX_PASSWORD_LENGTH} characters", field="password"
        )
    if password.lower() in common_passwords():
        raise BadUserInput("password is too common", field="password")
