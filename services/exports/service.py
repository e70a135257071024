"""The data export facade: `exportMyData` makes a link, the link streams the archive.

Nothing is built when the link is made: the archive is assembled from the services'
export parts while it downloads (so its size never sits in memory or on disk), and
each part checks at its own facade that the caller is the user (or the operator).
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from redis.asyncio import Redis

from services.errors import Forbidden, RateLimited, Unauthenticated
from services.exports.archive import Section, write_archive
from services.exports.links import ExportLinks, LinkExpired, LinkRefused
from services.principal import Caller, ExportSubject, Operator, Principal

log = structlog.get_logger(__name__)

_KEY = "haunted:export:"
_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
PATH = "/exports"

Clock = Callable[[], datetime]
SubjectReader = Callable[[Caller, str], Awaitable[ExportSubject]]
# Raises Unauthenticated once the session that asked for a link has ended.
SessionCheck = Callable[[Principal], Awaitable[object]]
# Records that a user's export was asked for (an audited event, no personal data in it).
Announcer = Callable[[Caller, str], Awaitable[None]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ExportLink:
    url: str  # relative to the gateway: /exports/<id>?exp=...&sig=...
    expires_at: datetime


def _limits_storage(redis_url: str) -> tuple[str, dict[str, str]]:
    """The `limits` storage for the app's Redis URL (memory:// stays in-process)."""
    if redis_url == "memory://":
        return "async+memory://", {}
    return "async+" + redis_url, {"implementation": "redispy"}


class DataExports:
    def __init__(
        self,
        sections: Sequence[tuple[str, Section]],
        subject_of: SubjectReader,
        redis: Redis,
        links: ExportLinks,
        *,
        ttl: timedelta = timedelta(minutes=15),
        rate_limit: str = "5/hour",
        redis_url: str = "memory://",
        announce: Announcer | None = None,
        session_check: SessionCheck | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.sections = list(sections)
        self._subject_of = subject_of
        self._redis = redis
        self.links = links
        self.ttl = ttl
        self._announce = announce
        self._session_check = session_check
        self.clock = clock
        uri, options = _limits_storage(redis_url)
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri, **options))
        self._rate = parse(rate_limit)

    async def request(self, principal: Principal) -> ExportLink:
        """A link to the caller's own archive, valid for `ttl`; RATE_LIMITED past the limit."""
        if not isinstance(principal, Principal):
            raise Unauthenticated("authentication required")
        if principal.api_key_id is not None:
            raise Forbidden("an API key acts for a team: a person asks for their own export")
        await self._hit_rate_limit(principal.user_id)
        await self._subject_of(principal, principal.user_id)  # the user still exists
        export_id = secrets.token_urlsafe(24)
        expires = math.ceil((self.clock() + self.ttl).timestamp())
        record = json.dumps({"user_id": principal.user_id, "session_id": principal.session_id})
        # Kept a little past the link's expiry: the link's own time says "expired" first.
        await self._redis.set(_KEY + export_id, record, ex=int(self.ttl.total_seconds()) + 60)
        if self._announce is not None:
            await self._announce(principal, principal.user_id)
        log.info("data export requested", export_id=export_id)
        return ExportLink(
            f"{PATH}/{export_id}?{self.links.query(export_id, expires)}",
            datetime.fromtimestamp(expires, UTC),
        )

    async def redeem(
        self, export_id: str, expires: str, signature: str, bearer: Principal | None = None
    ) -> Principal:
        """The user a link was made for, as they asked (their user and session ids).
        LinkRefused (403): a changed or made-up link, or one used by another signed-in
        user; LinkExpired (410): a genuine one past its time, or whose session ended.
        Says nothing else."""
        if not _ID.fullmatch(export_id):
            raise LinkRefused("this export link is not valid")
        self.links.check(export_id, expires, signature, self.clock())
        raw = await self._redis.get(_KEY + export_id)
        if raw is None:
            raise LinkExpired("this export link has expired: ask for a new export")
        record = json.loads(raw)
        owner = Principal(user_id=record["user_id"], session_id=record["session_id"])
        if bearer is not None and bearer.user_id != owner.user_id:
            raise LinkRefused("this export link is not valid")
        if self._session_check is not None:
            # Signing out (or "sign out everywhere" after a scare) ends the links too.
            try:
                await self._session_check(owner)
            except Unauthenticated:
                raise LinkExpired(
                    "this export link ended with the session that asked for it"
                ) from None
        return owner

    async def archive(self, caller: Caller, user_id: str) -> AsyncIterator[bytes]:
        """The archive's bytes, streamed. The caller is checked before the first byte
        (FORBIDDEN, NOT_FOUND raise here), then again by each part's facade."""
        subject = await self._subject_of(caller, user_id)
        return write_archive(self.sections, caller, subject, self.clock())

    async def operator_archive(self, operator: Operator, user_id: str) -> AsyncIterator[bytes]:
        """`haunted privacy export`: any user's archive, audited as the operator's."""
        stream = await self.archive(operator, user_id)  # NOT_FOUND before anything is recorded
        if self._announce is not None:
            await self._announce(operator, user_id)
        return stream

    async def _hit_rate_limit(self, user_id: str) -> None:
        if not await self._limiter.hit(self._rate, "exports", user_id):
            stats = await self._limiter.get_window_stats(self._rate, "exports", user_id)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(
                f"too many data exports; retry in {retry_after} s", retryAfter=retry_after
            )
