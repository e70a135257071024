"""Sign-in with a second factor: TOTP (RFC 6238, pyotp) and single-use recovery codes.

The TOTP secret is sealed with the PII key ring (bound to its user); recovery codes are
kept as keyed hashes. A code is accepted once: the time step it used is remembered.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import TwoFactorChanged
from services.auth.accounts import Accounts
from services.auth.audit import add_audited_event
from services.auth.crypto import Sealed
from services.auth.models import RecoveryCode, SecondFactor, User
from services.errors import BadUserInput, Conflict, Forbidden
from services.principal import Principal

ISSUER = "Haunted"
RECOVERY_CODES = 10
# One step either side: a phone clock 30 s off still signs in.
VALID_WINDOW = 1


@dataclass(frozen=True, slots=True)
class Enrolment:
    secret: str  # shown once, for an authenticator app that cannot scan
    uri: str  # otpauth://, for a QR code


TOTP_CODE = re.compile(r"[0-9]{6}")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)


def _recovery_code() -> str:
    """Ten characters in two halves (about 49 bits), never mistaken for a TOTP code."""
    text = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{text[:5]}-{text[5:]}"


def _context(user_id: str) -> str:
    return f"totp\0{user_id}"


def _only_users(principal: Principal) -> None:
    if principal.api_key_id is not None:
        raise Forbidden("API keys have no second factor")


class TwoFactor:
    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts
        self._db = accounts.db

    def _recovery_hash(self, code: str) -> str:
        return self._accounts.cipher.lookup_hash(code.strip().lower(), context="recovery-code")

    async def enrol(self, principal: Principal) -> Enrolment:
        """A new secret, pending until confirmed with a code (replaces a pending one)."""
        _only_users(principal)
        secret = pyotp.random_base32()
        sealed = self._accounts.cipher.seal(secret, context=_context(principal.user_id))
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            current = await session.get(SecondFactor, principal.user_id)
            if current is not None and current.confirmed_at is not None:
                raise Conflict("a second factor is already on: disable it first")
            if current is not None:
                await session.delete(current)
                await session.flush()
            session.add(
                SecondFactor(
                    user_id=principal.user_id,
                    key_id=sealed.key_id,
                    secret_ciphertext=sealed.ciphertext,
                    created_at=now,
                    last_step=0,
                )
            )
            user = await session.get(User, principal.user_id)
            assert user is not None
            name = await self._accounts.email_of(session, user)
        uri = pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)
        return Enrolment(secret, uri)

    async def confirm(self, principal: Principal, code: str) -> list[str]:
        """Turns the pending factor on with a first code; returns the recovery codes
        (shown this once)."""
        _only_users(principal)
        codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
        async with self._db.transaction() as session:
            factor = await session.get(SecondFactor, principal.user_id)
            if factor is None or factor.confirmed_at is not None:
                raise Conflict("no second factor is waiting for confirmation: enrol first")
            if not self._take_totp(factor, code):
                raise BadUserInput("the code is wrong or already used", field="code")
            factor.confirmed_at = datetime.now(UTC)
            await session.execute(
                delete(RecoveryCode).where(RecoveryCode.user_id == principal.user_id)
            )
            for recovery in codes:
                session.add(
                    RecoveryCode(code_hash=self._recovery_hash(recovery), user_id=principal.user_id)
                )
            add_audited_event(session, TwoFactorChanged(user_id=principal.user_id, enabled=True))
        await self._accounts.sessions.forget_roles(principal.user_id)  # team policies
        return codes

    async def disable(self, principal: Principal, code: str) -> None:
        """Turns the factor off; needs a current code or a recovery code."""
        _only_users(principal)
        async with self._db.transaction() as session:
            if not await self.check(session, principal.user_id, code):
                raise BadUserInput("the code is wrong or already used", field="code")
            await session.execute(
                delete(SecondFactor).where(SecondFactor.user_id == principal.user_id)
            )
            await session.execute(
                delete(RecoveryCode).where(RecoveryCode.user_id == principal.user_id)
            )
            add_audited_event(session, TwoFactorChanged(user_id=principal.user_id, enabled=False))
        await self._accounts.sessions.forget_roles(principal.user_id)  # team policies

    async def enabled(self, session: AsyncSession, user_id: str) -> bool:
        factor = await session.get(SecondFactor, user_id)
        return factor is not None and factor.confirmed_at is not None

    async def check(self, session: AsyncSession, user_id: str, code: str) -> bool:
        """Spends a TOTP code or a recovery code of the user's confirmed factor, in the
        caller's transaction; False when it is wrong or was used."""
        factor = await session.get(SecondFactor, user_id)
        if factor is None or factor.confirmed_at is None or len(code) > 64:
            return False
        if TOTP_CODE.fullmatch(code.strip()):
            return self._take_totp(factor, code)
        spent = await session.execute(
            update(RecoveryCode)
            .where(
                RecoveryCode.code_hash == self._recovery_hash(code),
                RecoveryCode.user_id == user_id,
                RecoveryCode.used_at.is_(None),
            )
            .values(used_at=datetime.now(UTC))
        )
        return bool(spent.rowcount)  # type: ignore[attr-defined]

    def _take_totp(self, factor: SecondFactor, code: str) -> bool:
        """Whether `code` is the TOTP of a step not used before; if so, that step is used."""
        secret = self._accounts.cipher.open(
            Sealed(factor.key_id, factor.secret_ciphertext), context=_context(factor.user_id)
        )
        totp, now = pyotp.TOTP(secret), time.time()
        step = int(now // totp.interval)
        for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
            candidate = step + offset
            if candidate <= factor.last_step:
                continue
            if secrets.compare_digest(
                totp.at(candidate * totp.interval).encode(), code.strip().encode()
            ):
                factor.last_step = candidate
                return True
        return False
