"""The session store and each process's copy of it (LocalSessions), on the real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from haunted.runtime import build_redis
from services.auth.sessions import LocalSessions, SessionStore
from tests.conftest import REDIS_TEST_URL, eventually


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = build_redis(REDIS_TEST_URL)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def copies(redis: Redis) -> AsyncIterator[list[SessionStore]]:
    """Two processes' stores, each with its copy, trusted."""
    stores = [SessionStore(redis, 3600) for _ in range(2)]
    for store in stores:
        await store.start_local_copy()
        assert store.local is not None
        await store.local.wait_trusted()
    yield stores
    for store in stores:
        await store.stop_local_copy()


async def served_from_copy(store: SessionStore, session_id: str, user_id: str) -> None:
    """Touches until the copy holds the session (a slide first, then a kept read)."""
    local = store.local
    assert local is not None

    async def kept() -> bool:
        assert await store.touch(session_id, user_id) == (True, {"t1": "owner"})
        return local.lookup(session_id, user_id) is not None

    await eventually(kept)


async def test_a_session_deleted_anywhere_is_ended_in_every_copy(
    redis: Redis, copies: list[SessionStore]
) -> None:
    writer = SessionStore(redis, 3600)  # the process that logs out, no copy
    await writer.create("s1", "u1")
    await writer.cache_roles("u1", {"t1": "owner"})
    for store in copies:
        await served_from_copy(store, "s1", "u1")
    await writer.delete("s1")

    async def ended_everywhere() -> bool:
        return all([not (await store.touch("s1", "u1"))[0] for store in copies])

    await eventually(ended_everywhere)


async def test_a_role_change_reaches_every_copy(redis: Redis, copies: list[SessionStore]) -> None:
    writer = SessionStore(redis, 3600)
    await writer.create("s1", "u1")
    await writer.cache_roles("u1", {"t1": "owner"})
    for store in copies:
        await served_from_copy(store, "s1", "u1")
    await writer.forget_roles("u1")  # a membership change committed

    async def reloaded_everywhere() -> bool:
        return all([await store.touch("s1", "u1") == (True, None) for store in copies])

    await eventually(reloaded_everywhere)


async def test_a_copy_that_loses_its_tracking_reads_redis_until_it_is_back(
    redis: Redis, copies: list[SessionStore]
) -> None:
    """Its connection killed: whatever changed meanwhile, the copy holds nothing old."""
    store = copies[0]
    local = store.local
    assert local is not None
    writer = SessionStore(redis, 3600)
    await writer.create("s1", "u1")
    await writer.cache_roles("u1", {"t1": "owner"})
    await served_from_copy(store, "s1", "u1")
    await redis.client_kill_filter(_type="pubsub")
    await writer.delete("s1")

    async def ended() -> bool:
        return not (await store.touch("s1", "u1"))[0]

    await eventually(ended)
    await local.wait_trusted()  # the connection is back (the positive marker)
    assert await store.touch("s1", "u1") == (False, {"t1": "owner"})
    assert local.lookup("s1", "u1") is None


async def test_a_read_raced_by_an_invalidation_is_not_kept(redis: Redis) -> None:
    local = LocalSessions(redis)
    await redis.set("haunted:session:s1", "u1")
    await redis.set("haunted:roles:u1", '{"t1": "owner"}')
    await local.read("s1", "u1", 3600)  # the first read slides, and keeps nothing
    original = redis.pipeline

    def racing_pipeline(*args: object, **kwargs: object) -> object:
        # The revocation's invalidation arrives while the read is in flight.
        local._invalidated([b"haunted:session:s1"])
        return original(*args, **kwargs)

    redis.pipeline = racing_pipeline  # type: ignore[method-assign]
    try:
        owner, _ = await local.read("s1", "u1", 3600)
    finally:
        redis.pipeline = original  # type: ignore[method-assign]
    assert owner == b"u1"
    assert local.lookup("s1", "u1") is None
    await local.read("s1", "u1", 3600)  # not raced: kept
    assert local.lookup("s1", "u1") == {"t1": "owner"}


async def test_a_session_deleted_by_this_process_leaves_its_copy_at_once(
    copies: list[SessionStore],
) -> None:
    store = copies[0]
    await store.create("s1", "u1")
    await store.cache_roles("u1", {"t1": "owner"})
    await served_from_copy(store, "s1", "u1")
    await store.delete("s1")
    assert store.local is not None
    assert store.local.lookup("s1", "u1") is None  # not waiting for Redis's word
    assert (await store.touch("s1", "u1"))[0] is False


async def test_from_store_reads_redis_whatever_the_copy_holds(
    redis: Redis, copies: list[SessionStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What re-authorises a long-lived connection (and the hub's re-checks when it cannot
    trust events) asks Redis itself, even of a session the copy still holds."""
    store = copies[0]
    local = store.local
    assert local is not None
    await store.create("s1", "u1")
    await store.cache_roles("u1", {"t1": "owner"})
    await served_from_copy(store, "s1", "u1")
    # An invalidation that never arrives, on a link that just broke, while the copy is still
    # trusted (the canary has not said so yet): held still here.
    monkeypatch.setattr(local, "_invalidated", lambda keys: None)
    monkeypatch.setattr(LocalSessions, "trusted", property(lambda self: True))
    await SessionStore(redis, 3600).delete("s1")
    assert await store.touch("s1", "u1") == (True, {"t1": "owner"})  # the copy, stale
    assert (await store.touch("s1", "u1", from_store=True))[0] is False
