"""Many gateways: two Haunted processes' worth of gateway (one with the workers, one
`haunted serve` alone) on their own ports, against one broker, one database and one
Redis. Each fan-out consumer sees every event and delivers to its own clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from haunted.settings import Settings
from tests.conftest import Server, free_port, register, serve
from tests.gateway.realtime import Recorder, inbox, notify, shared_settings

ONLINE = "query($teamId: ID) { onlineMembers(teamId: $teamId) { userId connections } }"


@pytest.fixture
async def settings_of_the_deployment(
    backend: str,
    migrated_template: str,
    signing_key_files: tuple[Path, Path],
    tmp_path: Path,
) -> AsyncIterator[Settings]:
    async with shared_settings(
        backend, migrated_template, signing_key_files, tmp_path, real_redis=True
    ) as settings:
        yield settings


@pytest.fixture
async def clients() -> AsyncIterator[list[Recorder]]:
    opened: list[Recorder] = []
    yield opened
    for client in opened:
        await client.close()


async def connect(
    clients: list[Recorder], server: Server, auth: Any, *, reconnection: bool = False
) -> Recorder:
    client = Recorder(reconnection=reconnection)
    clients.append(client)
    await client.connect(server.url, auth)
    await client.wait_for("connection_ready")
    return client


async def test_each_gateway_delivers_to_its_own_clients(
    settings_of_the_deployment: Settings, clients: list[Recorder]
) -> None:
    async with (
        serve(settings_of_the_deployment) as first,
        serve(settings_of_the_deployment, workers=()) as second,
    ):
        alice = await register(first)
        bob = await register(second)  # registered through the gateway without workers
        alice_id, bob_id = alice["user"]["id"], bob["user"]["id"]
        alice_on_first = await connect(clients, first, {"token": alice["token"]})
        alice_on_second = await connect(clients, second, {"token": alice["token"]})
        bob_on_second = await connect(clients, second, {"token": bob["token"]})

        await notify(first.haunted, alice_id, "for alice")
        await notify(first.haunted, bob_id, "for bob")
        # Then a marker each: anything misrouted or doubled would have come before it.
        await notify(first.haunted, alice_id, "marker")
        await notify(first.haunted, bob_id, "marker")
        for client in (alice_on_first, alice_on_second, bob_on_second):
            await client.wait_for("notification", 2)
        stored = {
            user: [n.id for n in await inbox(first.haunted, user, 2)] for user in (alice_id, bob_id)
        }
        for client, user, title in (
            (alice_on_first, alice_id, "for alice"),
            (alice_on_second, alice_id, "for alice"),
            (bob_on_second, bob_id, "for bob"),
        ):
            assert client.titles() == [title, "marker"]
            assert [n["id"] for n in client.named("notification")] == stored[user]

        # Presence is shared: either gateway answers for connections on both.
        team_id = alice["user"]["memberships"][0]["team"]["id"]
        for server in (first, second):
            body = await server.graphql(ONLINE, {"teamId": team_id}, token=alice["token"])
            assert body == {"data": {"onlineMembers": [{"userId": alice_id, "connections": 2}]}}


async def test_clients_of_a_restarted_gateway_reconnect_with_since_and_miss_nothing(
    settings_of_the_deployment: Settings, clients: list[Recorder]
) -> None:
    port = free_port()
    async with serve(settings_of_the_deployment) as workers:
        me = await register(workers)
        user_id = me["user"]["id"]
        client = Recorder(reconnection=True)
        clients.append(client)

        def auth() -> dict[str, str]:  # called on every (re)connection
            received = client.named("notification")
            return {"token": me["token"], **({"since": received[-1]["id"]} if received else {})}

        async with serve(settings_of_the_deployment, port, workers=()) as gateway:
            await client.connect(gateway.url, auth)
            await client.wait_for("connection_ready")
            for n in range(3):
                await notify(workers.haunted, user_id, f"n{n}")
            await client.wait_for("notification", 3)

        # The gateway is down: its clients lose the connection, notifications go on.
        assert client.disconnects
        for n in range(3, 6):
            await notify(workers.haunted, user_id, f"n{n}")
        await inbox(workers.haunted, user_id, 6)

        async with serve(settings_of_the_deployment, port, workers=()) as gateway:
            await client.wait_for("connection_ready", 2)  # reconnected by itself
            await client.wait_for("notification", 6)
            # n6 is live, after the recovery: a doubled or missed one shows before it.
            await notify(workers.haunted, user_id, "n6")
            await client.wait_for("notification", 7)
            assert client.titles() == [f"n{n}" for n in range(7)]
            # Not only the titles: the very notifications stored, each once, in order.
            stored = [n.id for n in await inbox(workers.haunted, user_id, 7)]
            assert [n["id"] for n in client.named("notification")] == stored
