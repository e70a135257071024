"""deleteAccount end to end (issue 20.2): through the real gateway, broker, consumers and
database. After the erase, the address cannot be read from the records the topics retain
(by a plain Kafka consumer, with the PII ring in hand), a replay does not bring the user
back into analytics, and a redelivered user.erased changes nothing."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cryptography.exceptions import InvalidTag
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from haunted.cli import app
from haunted.keyring import load_pii_keys
from haunted.settings import Settings
from schemas import CATALOG
from services.analytics.models import AnalyticsEvent, ErasedUser
from services.auth import EventUnsealer, PiiCipher
from services.auth.crypto import KeyRingError, Sealed
from services.notifications.models import Inbox, KnownDevice, Notification
from tests.conftest import LOGIN, PASSWORD, Server, eventually, register
from tests.haunted import logging_restored

DELETE = "mutation($password: String!) { deleteAccount(password: $password) }"
TRACK = 'mutation { track(name: "clicked", properties: {where: "home"}) }'
INVITE = """mutation($team: ID!, $email: String!, $role: String!) {
  inviteMember(teamId: $team, email: $email, role: $role) { token } }"""
ACCEPT = "mutation($token: String!) { acceptInvite(token: $token) { role } }"


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def retained(bootstrap: str) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    """Every record of every catalog topic, read as an outside consumer would: no group,
    from the beginning, up to the end offsets at the start."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in CATALOG
            for partition in sorted(reader.partitions_for_topic(topic) or ())
        ]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        ends = await reader.end_offsets(partitions)
        records: list[tuple[str, bytes, list[tuple[str, bytes]]]] = []
        todo = {p for p in partitions if ends[p] > 0}
        while todo:
            fetched = await reader.getmany(*todo, timeout_ms=500)
            for partition, batch in fetched.items():
                for record in batch:
                    assert record.value is not None
                    records.append((partition.topic, record.value, list(record.headers)))
                if await reader.position(partition) >= ends[partition]:
                    todo.discard(partition)
        return records
    finally:
        await reader.stop()


async def analytics_of(server: Server, user_id: str) -> int:
    async with server.haunted.db.read() as session:
        return int(
            await session.scalar(select(func.count()).where(AnalyticsEvent.user_id == user_id)) or 0
        )


async def notifications_of(server: Server, user_id: str) -> int:
    async with server.haunted.db.read() as session:
        counted = 0
        for table in (Notification, Inbox, KnownDevice):
            counted += int(
                await session.scalar(
                    select(func.count()).select_from(table).where(table.user_id == user_id)
                )
                or 0
            )
        return counted


async def replay_analytics(settings: Settings) -> Result:
    env = {
        "HAUNTED_DATABASE_URL": settings.database_url,
        "HAUNTED_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "HAUNTED_DATA_DIR": str(settings.data_dir),
        "HAUNTED_LOG_JSON": "true",
    }

    def run() -> Result:
        with logging_restored():
            return CliRunner().invoke(app, ["replay", "analytics", "--rebuild"], env=env)

    return await asyncio.to_thread(run)


async def test_delete_account_leaves_nothing_readable_and_replay_does_not_bring_it_back(
    server: Server, settings: Settings
) -> None:
    owner = await register(server)
    user = await register(server)
    user_id, email = user["user"]["id"], user["user"]["email"]
    # A member of another team: "You joined a team" in their inbox.
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    invited = await server.data(
        INVITE, {"team": team_id, "email": email, "role": "member"}, owner["token"]
    )
    await server.data(ACCEPT, {"token": invited["inviteMember"]["token"]}, user["token"])
    # A second device: user.logged_in carries the address sealed, for the new-device mail.
    login = await server.graphql(LOGIN, {"email": email, "password": PASSWORD})
    token = login["data"]["login"]["token"]
    assert (await server.data(TRACK, token=token))["track"] is True
    await eventually(lambda: analytics_of(server, user_id))
    await eventually(lambda: notifications_of(server, user_id))

    # Refused, and nothing changed: no token, a wrong password.
    assert code(await server.graphql(DELETE, {"password": PASSWORD})) == "UNAUTHENTICATED"
    wrong = await server.graphql(DELETE, {"password": "not-the-password"}, token=token)
    assert code(wrong) == "FORBIDDEN"
    assert wrong["errors"][0]["extensions"]["field"] == "password"
    me = await server.data("{ me { id email } }", token=token)
    assert me["me"] == {"id": user_id, "email": email}
    members = "query($team: ID!) { team(id: $team) { members { userId email } } }"
    listed = await server.data(members, {"team": team_id}, owner["token"])
    assert {"userId": user_id, "email": email} in listed["team"]["members"]

    assert (await server.data(DELETE, {"password": PASSWORD}, token=token))["deleteAccount"]

    # Every session ended at once.
    for each in (token, user["token"]):
        assert (await server.graphql("{ me { id } }", token=each))["data"]["me"] is None
    assert code(await server.graphql(LOGIN, {"email": email, "password": PASSWORD})) == (
        "UNAUTHENTICATED"
    )
    listed = await server.data(members, {"team": team_id}, owner["token"])
    assert user_id not in {m["userId"] for m in listed["team"]["members"]}

    async def anonymised() -> bool:
        async with server.haunted.db.read() as session:
            erased = await session.get(ErasedUser, user_id)
        return (
            erased is not None
            and await analytics_of(server, user_id) == 0
            and await analytics_of(server, erased.anonymous_id) > 0
        )

    await eventually(anonymised)
    await eventually(lambda: _none(notifications_of(server, user_id)))
    async with server.haunted.db.read() as session:
        erased = await session.get(ErasedUser, user_id)
        assert erased is not None
        anonymous_id = erased.anonymous_id
    counted = await analytics_of(server, anonymous_id)

    # A plain Kafka consumer, with the PII key ring in hand: the address is in no record
    # in clear, and the sealed copies do not open (their key was the user's, now gone).
    records = await retained(settings.kafka.bootstrap)
    assert not any(email.encode() in value for _, value, _ in records)
    ring, lookup_key = load_pii_keys(settings)
    cipher = PiiCipher(ring, lookup_key)
    sealed = [
        json.loads(value)  # binary mode: the value is the data, the attributes are headers
        for topic, value, _ in records
        if topic == "user.logged_in" and json.loads(value)["user_id"] == user_id
    ]
    assert sealed and all("sealed_address" in data for data in sealed)
    for data in sealed:
        assert data["address_key_id"] == f"user:{user_id}"
        async with server.haunted.db.read() as session:  # as the email channel opens it
            opened = await EventUnsealer(cipher)(
                session, data["address_key_id"], base64.b64decode(data["sealed_address"]), "email"
            )
        assert opened is None
        for key_id in ring:  # no key of the ring opens what a data key sealed
            with pytest.raises((InvalidTag, KeyRingError)):
                cipher.open(
                    Sealed(key_id, base64.b64decode(data["sealed_address"])), context="email"
                )

    # Replay from the beginning into an emptied store: the user's events come back under
    # the anonymous id only, as many as before.
    replayed = await replay_analytics(settings)
    assert replayed.exit_code == 0, replayed.output
    assert await analytics_of(server, user_id) == 0
    assert await analytics_of(server, anonymous_id) == counted

    # user.erased delivered again (as the relay would after a crash): nothing changes. A
    # later event, stored after it, shows it was read.
    [(_, value, headers)] = [
        (t, v, h) for t, v, h in records if t == "user.erased" and user_id.encode() in v
    ]
    before = (await analytics_of(server, anonymous_id), await notifications_of(server, user_id))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("user.erased", value, key=user_id.encode(), headers=headers)
    finally:
        await producer.stop()
    marker = await register(server)
    await eventually(lambda: analytics_of(server, marker["user"]["id"]))
    after = (await analytics_of(server, anonymous_id), await notifications_of(server, user_id))
    assert after == before
    async with server.haunted.db.read() as session:
        stored = await session.scalar(
            select(func.count()).where(AnalyticsEvent.type == "user.erased")
        )
    assert stored == 1


async def _none(count: Any) -> bool:
    return await count == 0
