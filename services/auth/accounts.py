"""What the auth facades share: emails in and out of their sealed form, roles, sessions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from events.db import Database
from services.auth.crypto import PiiCipher, Sealed
from services.auth.models import Membership, Team, User
from services.auth.sessions import SessionStore
from services.auth.views import MembershipView, UserView
from services.errors import BadUserInput, Unauthenticated

EMAIL = "email"
_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_email(email: str) -> str:
    """NFKC, trimmed, lower case; ASCII local part; domain in IDNA (punycode) form.

    Unicode look-alikes in the local part are refused rather than stored, so
    "admin@" spelled with a Cyrillic "a" can never pose as the real one.
    """
    if len(email) > 320:
        raise BadUserInput("email is not a valid address", field="email")
    text = unicodedata.normalize("NFKC", email).strip()
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL.match(local) or ".." in local:
        raise BadUserInput("email is not a valid address", field="email")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError as error:
        raise BadUserInput("email is not a valid address", field="email") from error
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise BadUserInput("email is not a valid address", field="email")
    return f"{local.lower()}@{ascii_domain}"


@dataclass
class Accounts:
    """The pieces every auth facade needs, built once."""

    db: Database
    cipher: PiiCipher
    sessions: SessionStore

    def email_hash(self, normalized_email: str) -> str:
        return self.cipher.lookup_hash(normalized_email, context=EMAIL)

    def email_of(self, user: User) -> str:
        return self.cipher.open(Sealed(user.email_key_id, user.email_ciphertext), context=EMAIL)

    async def roles(self, user_id: str) -> dict[str, str]:
        """The user's team -> role map: from the Redis cache, else the database."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(Membership.team_id, Membership.role).where(Membership.user_id == user_id)
            )
            roles = {team_id: role for team_id, role in rows.all()}
        await self.sessions.cache_roles(user_id, roles)
        return roles

    async def user_view(self, session: AsyncSession, user_id: str) -> UserView:
        user = await session.get(User, user_id)
        if user is None:
            raise Unauthenticated("user no longer exists")
        rows = await session.execute(
            select(Membership.team_id, Team.name, Membership.role)
            .join(Team, Team.id == Membership.team_id)
            .where(Membership.user_id == user_id)
            .order_by(Membership.created_at, Membership.team_id)
        )
        return UserView(user.id, self.email_of(user), [MembershipView(*row) for row in rows.all()])
