"""Auth's consumer: a revoked session leaves the session store, even if the store was
away when the revocation committed.

Logout and revocation delete the session from Redis right after their commit,
and fail visibly if Redis does not answer then. This group is the second
chance: it follows the same commit through the outbox, and an outage of Redis
only makes it wait (the consumer pauses and retries), so the token stops
working as soon as Redis is back, whether or not the caller retried.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from events.envelope import Envelope
from events.handlers import Handlers
from schemas import Event, SessionRevoked, UserErased, UserLoggedOut
from services.auth.erasure import Erasures
from services.auth.models import UserSession
from services.auth.sessions import SessionStore

CONSUMER = "auth"


def build_handlers(sessions: SessionStore, erasures: Erasures | None = None) -> Handlers:
    handlers = Handlers(CONSUMER)

    if erasures is not None:

        @handlers.on(UserErased)
        async def shred_backup_keys(session: AsyncSession, event: Event, _: Envelope) -> None:
            """Where the erase ran without the backups at hand (the gateway), the worker
            rewrites their key files; where it had them, this finds nothing left."""
            assert isinstance(event, UserErased)
            await erasures.shred_backup_keys(event.user_id)

    @handlers.on(UserLoggedOut)
    async def forget_logged_out(session: AsyncSession, event: Event, _: Envelope) -> None:
        assert isinstance(event, UserLoggedOut)
        await sessions.delete(event.session_id)

    @handlers.on(SessionRevoked)
    async def forget_revoked(session: AsyncSession, event: Event, _: Envelope) -> None:
        assert isinstance(event, SessionRevoked)
        if event.session_id is not None:
            await sessions.delete(event.session_id)
            return
        # Every session of the user: those the database has revoked and not expired.
        ended = list(
            await session.scalars(
                select(UserSession.id).where(
                    UserSession.user_id == event.user_id,
                    UserSession.revoked_at.is_not(None),
                    UserSession.expires_at > datetime.now(UTC),
                )
            )
        )
        if ended:
            await sessions.delete(*ended)

    return handlers


__all__ = ["CONSUMER", "build_handlers"]
