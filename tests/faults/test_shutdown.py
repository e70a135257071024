"""A stopping process cleans up everything, even when one step of it fails.

The review found that one failing task skipped the rest of the cleanup, and
that presence entries outlived the gateway (nothing removed them at stop; they
lingered for their TTL, showing users online on a gateway that was gone).
"""

from __future__ import annotations

from pathlib import Path

from events.embedded import EmbeddedBroker
from gateway.push import Presence
from tests.conftest import eventually, register, serve
from tests.faults.conftest import fault_settings
from tests.faults.scratch import ScratchRedis
from tests.gateway.realtime import Recorder


async def test_stop_clears_presence_and_finishes_cleanup_after_a_failed_step(
    database_url: str,
    scratch_redis: ScratchRedis,
    kafka: EmbeddedBroker,
    tmp_path: Path,
    signing_key_files: tuple[Path, Path],
) -> None:
    settings = fault_settings(
        database_url,
        scratch_redis.url,
        kafka.bootstrap_servers,
        tmp_path,
        signing_key_files,
        presence_ttl_s=600,  # so only the stop can have removed the entry
    )
    client = Recorder()
    async with serve(settings) as server:
        me = await register(server)
        team_id = me["user"]["memberships"][0]["team"]["id"]
        await client.connect(server.url, {"token": me["token"]})
        presence = Presence(server.haunted.redis, settings.realtime.presence_ttl_s)

        async def online() -> bool:
            return [m.user_id for m in await presence.online(team_id)] == [me["user"]["id"]]

        await eventually(online)

        async def broken() -> None:
            raise RuntimeError("the flags client would not stop")

        # The first step of the stop fails: every later one must still run.
        server.haunted.services.flags.stop = broken  # type: ignore[method-assign]
    await client.close()

    from redis.asyncio import Redis

    observer = Redis.from_url(scratch_redis.url)
    try:
        keys = [key async for key in observer.scan_iter("haunted:presence:*")]
        assert keys == [] or all(await observer.zcard(key) == 0 for key in keys)
    finally:
        await observer.aclose()
