"""Logout holds when Redis fails at that moment.

Logout revokes the session in the database and then deletes it from Redis,
which is what makes its token stop working. If Redis is away at that moment,
the call must not report success, and the token must stop working once Redis
is back, even if the caller never retries: auth's consumer follows the
logout through the outbox and deletes the session, waiting out the outage.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from events.embedded import EmbeddedBroker
from haunted.runtime import Haunted
from services.errors import Unauthenticated, Unavailable
from tests.conftest import PASSWORD, eventually, unique_email
from tests.faults.conftest import fault_settings
from tests.faults.scratch import ScratchRedis


async def test_a_logout_while_redis_is_away_fails_visibly_and_the_token_dies_once_it_is_back(
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
    )
    async with Haunted.build(settings).running() as app:
        auth = app.services.auth
        result = await auth.register(unique_email(), PASSWORD)
        principal = await auth.authenticate(result.token)

        await scratch_redis.stop()
        with pytest.raises(Unavailable, match="retry"):
            await auth.logout(principal)
        await scratch_redis.start()  # its data back from the append-only file

        async def token_dead() -> bool:
            try:
                await auth.authenticate(result.token)
            except Unauthenticated:
                return True
            except RedisConnectionError:  # polled while Redis is coming back: not yet
                return False
            return False

        # No retry by the caller: the logout event, through the outbox, does it.
        await eventually(token_dead, timeout_s=60)
        # A retry now is harmless: already ended, and it says so.
        assert await auth.logout(principal) is False
