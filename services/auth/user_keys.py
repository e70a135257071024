"""Per-user data keys: crypto-shredding.

Every personal field of a user (the email, the addresses and user agents of their
sessions) is sealed with a key of that user's own, itself wrapped with the PII key
ring and kept in `auth_user_keys`. Deleting that one row makes all of it unreadable at
once: in the tables, in the events that carried it sealed, and in old backups, which
never hold the key (haunted/backup.py keeps the key store out of the dump).

A value sealed with a data key says so by its key id: "user" in auth's own rows (the row
names its user), "user:<user id>" in events (a consumer holding the key store opens it).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.auth.crypto import DataKeyErased, PiiCipher, Sealed, open_with, seal_with
from services.auth.models import UserKey
from services.auth.views import ClientInfo

USER_KEY_ID = "user"  # in a row: sealed with the data key of the row's user
EVENT_KEY_PREFIX = "user:"  # in an event: "user:<user id>"


def _wrap_context(user_id: str) -> str:
    return f"user-key\0{user_id}"


def event_key_id(user_id: str) -> str:
    return EVENT_KEY_PREFIX + user_id


def user_of_event_key(key_id: str) -> str | None:
    """The user whose data key an event's key id names; None for a ring key id."""
    return key_id.removeprefix(EVENT_KEY_PREFIX) if key_id.startswith(EVENT_KEY_PREFIX) else None


CLIENT = "session-client"  # the associated data of a session's sealed client


def seal_client(key: bytes, client: ClientInfo) -> bytes | None:
    """A session's client address and user agent, sealed with the user's data key."""
    if client.ip is None and not client.user_agent:
        return None
    seen = {"ip": client.ip, "user_agent": (client.user_agent or "")[:300] or None}
    return seal_with(key, json.dumps(seen), context=CLIENT)


def open_client(key: bytes | None, sealed: bytes | None) -> tuple[str | None, str | None]:
    """(ip, user agent) of a session; (None, None) when none was kept or the key is gone."""
    if key is None or sealed is None:
        return None, None
    seen = json.loads(open_with(key, sealed, context=CLIENT))
    return seen.get("ip"), seen.get("user_agent")


class UserKeys:
    """The key store's reads and writes, in the caller's transaction."""

    def __init__(self, cipher: PiiCipher) -> None:
        self._cipher = cipher

    def create(self, session: AsyncSession, user_id: str, now: datetime) -> bytes:
        key = os.urandom(32)
        wrapped = self._cipher.seal(base64.b64encode(key).decode(), context=_wrap_context(user_id))
        session.add(
            UserKey(
                user_id=user_id,
                ring_key_id=wrapped.key_id,
                wrapped_key=wrapped.ciphertext,
                created_at=now,
            )
        )
        return key

    def unwrap(self, row: UserKey) -> bytes:
        """The data key a key store row holds (read by the caller, e.g. joined)."""
        opened = self._cipher.open(
            Sealed(row.ring_key_id, row.wrapped_key), context=_wrap_context(row.user_id)
        )
        return base64.b64decode(opened)

    async def get(self, session: AsyncSession, user_id: str) -> bytes:
        """The user's data key; DataKeyErased when it is gone."""
        row = await session.get(UserKey, user_id)
        if row is None:
            raise DataKeyErased(f"user {user_id} has no data key (erased)")
        return self.unwrap(row)

    async def get_many(self, session: AsyncSession, user_ids: Iterable[str]) -> dict[str, bytes]:
        """The data keys of these users that still exist (one query)."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        rows = await session.scalars(select(UserKey).where(UserKey.user_id.in_(wanted)))
        return {row.user_id: self.unwrap(row) for row in rows.all()}

    async def ensure(self, session: AsyncSession, user_id: str, now: datetime) -> bytes:
        """The user's data key, created if they have none yet (rows older than data keys)."""
        row = await session.get(UserKey, user_id)
        return self.unwrap(row) if row is not None else self.create(session, user_id, now)

    @staticmethod
    def seal(key: bytes, plaintext: str, *, context: str) -> bytes:
        return seal_with(key, plaintext, context=context)

    @staticmethod
    def open(key: bytes, ciphertext: bytes, *, context: str) -> str:
        return open_with(key, ciphertext, context=context)


class EventUnsealer:
    """Opens a sealed field of an event, for a service the composition root gives it to
    (the email channel): a ring key id opens with the ring, "user:<id>" with that user's
    data key. None when that key is gone: the user was erased."""

    def __init__(self, cipher: PiiCipher) -> None:
        self._cipher = cipher
        self._keys = UserKeys(cipher)

    async def __call__(
        self, session: AsyncSession, key_id: str, ciphertext: bytes, context: str
    ) -> str | None:
        """Reads the key store in the caller's session (on SQLite, a second one would wait
        for the lock the caller's transaction holds)."""
        user_id = user_of_event_key(key_id)
        if user_id is None:
            return self._cipher.open(Sealed(key_id, ciphertext), context=context)
        try:
            key = await self._keys.get(session, user_id)
        except DataKeyErased:
            return None
        return open_with(key, ciphertext, context=context)
