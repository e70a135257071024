"""What the auth facades share: emails in and out of their sealed form, roles, sessions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.db import Database
from services.auth.crypto import DataKeyErased, PiiCipher, Sealed
from services.auth.models import Membership, SecondFactor, Team, User, UserKey
from services.auth.sessions import SessionStore
from services.auth.user_keys import USER_KEY_ID, UserKeys
from services.auth.views import MembershipView, UserView
from services.errors import BadUserInput, Unauthenticated
from services.principal import Principal

EMAIL = "email"
NEEDS_SECOND_FACTOR = "2fa!"  # a cached role's mark: see Accounts.roles
# Shown for a user whose data key is gone but whose row is not yet (a restored backup
# before its erasures are applied again): the address can no longer be read.
ERASED_EMAIL = "(erased)"


def principal_of(user_id: str, session_id: str, roles: dict[str, str]) -> Principal:
    """A signed-in user's principal from their (cached) role map."""
    missing = frozenset(
        team for team, role in roles.items() if role.startswith(NEEDS_SECOND_FACTOR)
    )
    if missing:
        roles = {team: role.removeprefix(NEEDS_SECOND_FACTOR) for team, role in roles.items()}
    return Principal(
        user_id=user_id, session_id=session_id, teams=roles, second_factor_missing=missing
    )


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


# Built once, its user bound at each call: building a statement costs about as much CPU
# as running it.
_USER_VIEW = (
    select(User, UserKey, Membership.team_id, Team.name, Membership.role)
    .outerjoin(UserKey, UserKey.user_id == User.id)
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(Team, Team.id == Membership.team_id)
    .where(User.id == bindparam("user_id"))
    .order_by(Membership.created_at, Membership.team_id)
)


@dataclass
class Accounts:
    """The pieces every auth facade needs, built once."""

    db: Database
    cipher: PiiCipher
    sessions: SessionStore
    keys: UserKeys = field(init=False)

    def __post_init__(self) -> None:
        self.keys = UserKeys(self.cipher)

    def email_hash(self, normalized_email: str) -> str:
        return self.cipher.lookup_hash(normalized_email, context=EMAIL)

    def email_with(self, key: bytes | None, user: User) -> str:
        """The user's address, given their data key (None: it was erased)."""
        if user.email_key_id != USER_KEY_ID:  # sealed with the ring before data keys
            return self.cipher.open(Sealed(user.email_key_id, user.email_ciphertext), context=EMAIL)
        if key is None:
            return ERASED_EMAIL
        return UserKeys.open(key, user.email_ciphertext, context=EMAIL)

    async def email_of(self, session: AsyncSession, user: User) -> str:
        try:
            key: bytes | None = await self.keys.get(session, user.id)
        except DataKeyErased:
            key = None
        return self.email_with(key, user)

    async def roles(self, user_id: str) -> dict[str, str]:
        """The user's team -> role map, read from the database and cached in Redis. A team
        that requires a second factor the user has not turned on has its role marked
        (`principal_of` reads the mark): one cached map still answers every request."""
        async with self.db.read() as session:
            rows = await session.execute(
                select(Membership.team_id, Membership.role, Team.require_two_factor)
                .join(Team, Team.id == Membership.team_id)
                .where(Membership.user_id == user_id)
            )
            memberships = rows.all()
            lacking = False
            if any(required for _, _, required in memberships):
                factor = await session.get(SecondFactor, user_id)
                lacking = factor is None or factor.confirmed_at is None
        roles = {
            team_id: (NEEDS_SECOND_FACTOR + role if required and lacking else role)
            for team_id, role, required in memberships
        }
        await self.sessions.cache_roles(user_id, roles)
        return roles

    async def user_view(self, session: AsyncSession, user_id: str) -> UserView:
        """The user, their data key and their teams in one statement: `me` is on every
        page load, and each statement is a round trip to the database."""
        rows = (await session.execute(_USER_VIEW, {"user_id": user_id})).all()
        if not rows:
            raise Unauthenticated("user no longer exists")
        user, key_row = rows[0][0], rows[0][1]
        # No key row: the user was erased (DataKeyErased in `UserKeys.get`).
        key = self.keys.unwrap(key_row) if key_row is not None else None
        memberships = [
            MembershipView(team_id, team_name, role)
            for _, _, team_id, team_name, role in rows
            if team_id is not None and team_name is not None  # the outer join's empty row
        ]
        return UserView(user.id, self.email_with(key, user), memberships)
