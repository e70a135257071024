"""Single-use account tokens mailed to users: email verification and password reset.

A token is shown to nobody but the mailbox: its hash is stored (one hour, one use), and
the event that asks a mail channel to send it carries it sealed with the PII key ring,
beside the sealed address (docs/security.md: Account tokens).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from events.outbox import add_event
from schemas import EmailVerificationRequested, PasswordResetRequested
from services.auth.accounts import Accounts
from services.auth.crypto import token_hash
from services.auth.models import AccountToken, User
from services.auth.user_keys import USER_KEY_ID, event_key_id
from services.errors import BadUserInput

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a password
_PREFIX = {VERIFY_EMAIL: "hv_", RESET_PASSWORD: "hp_"}
_EVENT = {VERIFY_EMAIL: EmailVerificationRequested, RESET_PASSWORD: PasswordResetRequested}
TOKEN_TTL = timedelta(hours=1)
INVALID = "this link is invalid, used or expired"


def code_context(request_id: str) -> str:
    """The associated data a sealed code is bound to (what a mail channel opens it with)."""
    return f"account-code\0{request_id}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def mailed_to(user: User) -> dict[str, str]:
    """The sealed-address fields of an event whose owner is told by email: the row's
    ciphertext as it is; a data key's id names its user, so a consumer finds the key."""
    key_id = event_key_id(user.id) if user.email_key_id == USER_KEY_ID else user.email_key_id
    return {"address_key_id": key_id, "sealed_address": _b64(user.email_ciphertext)}


def sealed_code(accounts: Accounts, token: str, request_id: str) -> dict[str, str]:
    """The sealed-code fields of an event that mails a single-use link."""
    code = accounts.cipher.seal(token, context=code_context(request_id))
    return {"code_key_id": code.key_id, "sealed_code": _b64(code.ciphertext)}


def issue(
    session: AsyncSession, accounts: Accounts, user: User, purpose: str, now: datetime
) -> str:
    """Adds a token for `user` and the event that mails it, in the caller's transaction;
    returns the token (for tests and the email channel's own use: never answered)."""
    token = _PREFIX[purpose] + secrets.token_urlsafe(32)
    request_id = str(uuid.uuid4())
    expires_at = now + TOKEN_TTL
    session.add(
        AccountToken(
            id=request_id,
            purpose=purpose,
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    add_event(
        session,
        _EVENT[purpose](
            user_id=user.id,
            request_id=request_id,
            expires_at=expires_at,
            **mailed_to(user),
            **sealed_code(accounts, token, request_id),
        ),
    )
    return token


async def spend(session: AsyncSession, purpose: str, token: str, now: datetime) -> str:
    """Uses a token once; returns its user's id. The same refusal for unknown, used,
    expired and wrong-purpose tokens."""
    if not token.startswith(_PREFIX[purpose]) or len(token) > 200:
        raise BadUserInput(INVALID, field="token")
    row = await session.scalar(
        select(AccountToken).where(
            AccountToken.token_hash == token_hash(token), AccountToken.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise BadUserInput(INVALID, field="token")
    spent = await session.execute(
        update(AccountToken)
        .where(AccountToken.id == row.id, AccountToken.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        raise BadUserInput(INVALID, field="token")
    return row.user_id
