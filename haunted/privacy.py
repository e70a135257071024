"""`haunted privacy erase`: crypto-shredding a user, with what each service did.

Auth deletes the user's data key and its own rows and publishes user.erased (one
transaction); then each service's `forget` runs here, the same function its
user.erased handler runs when the event arrives (that run then finds nothing left).
The report is kept with the erasure: asking again prints the same one.
"""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from events.db import Database
from haunted.backup import restore_keys
from haunted.runtime import build_redis
from haunted.services import SPECS, build_auth
from haunted.settings import Settings
from schemas import UserErased
from services.auth import ErasureReport
from services.auth.erasure import OPERATOR


async def erase_user(settings: Settings, db: Database, redis: Redis, user_id: str) -> ErasureReport:
    """Erases one user (NOT_FOUND for an unknown id, CONFLICT for the last owner of a team
    with other members). A user erased before: the first erase's report; each service's
    `forget` runs again (a no-op unless a rebuild re-created rows of theirs)."""
    erasures = build_auth(settings, db, redis)["auth"].erasures
    report: ErasureReport = await erasures.erase(user_id, reason=OPERATOR)
    erased = UserErased(user_id=user_id, anonymous_id=report.anonymous_id, reason=OPERATOR)
    done: dict[str, dict[str, int]] = {}
    for spec in SPECS:
        if spec.name == "auth":
            continue
        if spec.forget is None:
            done[spec.name] = {}
            continue
        # Also when erased before: what a rebuild by replay re-created goes again.
        async with db.transaction() as session:
            done[spec.name] = await spec.forget(session, erased)
    if report.already:
        return report  # the first erase's report: this one is not a new erase
    recorded: ErasureReport = await erasures.record(user_id, done)
    return recorded


async def move_to_data_keys(settings: Settings) -> int:
    """`haunted migrate`'s data step: addresses sealed with the ring before data keys
    are re-sealed with their users' keys (it needs the keys, so Alembic cannot)."""
    db = Database(settings.database_url)
    redis = build_redis(settings.redis_url)
    try:
        moved: int = await build_auth(settings, db, redis)["auth"].erasures.move_to_data_keys()
        return moved
    finally:
        await redis.aclose()
        await db.dispose()


async def restore_key_store(settings: Settings, archive: Path) -> tuple[int, list[str]]:
    """After `haunted restore` loaded a dump: the backup's data keys of users that have
    none live and were not erased, then the erasures made since the backup applied again
    (the restored rows of those users go). Returns (keys put back, users dropped again)."""
    db = Database(settings.database_url)
    redis = build_redis(settings.redis_url)
    try:
        restored = await restore_keys(db, archive)
        erased: list[str] = await build_auth(settings, db, redis)["auth"].erasures.apply_again()
        return restored, erased
    finally:
        await redis.aclose()
        await db.dispose()
