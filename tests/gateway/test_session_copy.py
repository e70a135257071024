"""Each gateway's copy of the sessions it serves (services/auth/sessions.py,
LocalSessions): a session ended on one gateway is refused by every gateway, the broker
frozen or not, because the copy hears of it from Redis, not from an event.

Two gateways share one real Redis here on both backends (an in-memory store is one
per process, so it could not show two gateways agreeing); the embedded backend's
own in-memory store has no client tracking and keeps the copy off."""

from __future__ import annotations

import os
import signal

from events.embedded import EmbeddedBroker
from haunted.settings import Settings
from tests.conftest import REDIS_TEST_URL, eventually, register, serve

ME = "{ me { id } }"


async def test_a_logout_on_one_gateway_is_refused_by_every_gateway_even_with_the_broker_frozen(
    settings: Settings, kafka: EmbeddedBroker
) -> None:
    shared = settings.model_copy(update={"redis_url": REDIS_TEST_URL})
    async with serve(shared, workers=()) as first, serve(shared, workers=()) as second:
        for gateway in (first, second):
            local = gateway.haunted.services.auth.session_store.local
            assert local is not None
            await local.wait_trusted()
        me = await register(first)
        token = me["token"]
        for gateway in (first, second):  # each serves the session from its copy now
            for _ in range(3):
                assert await gateway.data(ME, {}, token) == {"me": {"id": me["user"]["id"]}}
        assert kafka.pid is not None
        os.kill(kafka.pid, signal.SIGSTOP)  # no event can travel from here on
        try:
            assert await first.data("mutation { logout }", {}, token) == {"logout": True}

            async def refused_everywhere() -> bool:
                # `me` is null for a caller whose token no longer proves a session.
                answers = [await gateway.graphql(ME, {}, token) for gateway in (first, second)]
                return all(answer == {"data": {"me": None}} for answer in answers)

            await eventually(refused_everywhere, timeout_s=5)
        finally:
            os.kill(kafka.pid, signal.SIGCONT)


async def test_the_in_memory_store_has_no_copy_and_still_answers(
    settings: Settings,
) -> None:
    memory = settings.model_copy(update={"redis_url": "memory://"})
    async with serve(memory, workers=()) as gateway:
        local = gateway.haunted.services.auth.session_store.local
        assert local is not None

        async def off() -> bool:
            return not local.supported

        await eventually(off)
        me = await register(gateway)
        assert await gateway.data(ME, {}, me["token"]) == {"me": {"id": me["user"]["id"]}}
        assert await gateway.data("mutation { logout }", {}, me["token"]) == {"logout": True}
        assert await gateway.data(ME, {}, me["token"]) == {"me": None}
