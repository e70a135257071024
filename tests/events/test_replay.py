"""Replay (events/replay.py) against a real broker and database, both backends."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from events.broker import Bus, KafkaProducer, KafkaSettings
from events.consumer import EventConsumers, RetryPolicy
from events.db import Database
from events.embedded import EmbeddedBroker
from events.envelope import Envelope
from events.replay import ReplayError, ReplayIncomplete, ReplayTarget, replay
from haunted.services import replay_targets
from services import analytics
from services.analytics.models import AnalyticsEvent, TeamMember
from tests.conftest import eventually
from tests.events.conftest import headers, read_all, tansu_pid
from tests.services.analytics.data import known_events, login

FAST_RETRY = RetryPolicy(max_attempts=2, backoff_s=0.01)


@pytest.fixture
def target() -> ReplayTarget:
    return replay_targets()["analytics"]


@pytest.fixture
def consumers(
    db: Database, producer: KafkaProducer, kafka_settings: KafkaSettings
) -> EventConsumers:
    return EventConsumers(db, producer, kafka_settings, FAST_RETRY)


@pytest.fixture
async def published(producer: KafkaProducer) -> AsyncIterator[list[Envelope]]:
    envelopes = known_events()
    for envelope in envelopes:
        await producer.publish(envelope)
    await producer.publish(envelopes[4])  # a redelivered event: the same ce_id again
    yield envelopes


async def snapshot(db: Database) -> dict[str, Any]:
    async with db.read() as session:
        events = (
            await session.execute(select(AnalyticsEvent).order_by(AnalyticsEvent.id))
        ).scalars()
        members = (await session.execute(select(TeamMember))).scalars()
        return {
            "events": [(e.id, e.type, e.time, e.user_id, e.team_id, e.properties) for e in events],
            "members": sorted((m.team_id, m.user_id, m.active, m.changed_at) for m in members),
        }


async def test_replay_twice_is_replaying_once(
    target: ReplayTarget,
    consumers: EventConsumers,
    db: Database,
    kafka_settings: KafkaSettings,
    published: list[Envelope],
) -> None:
    seen: list[tuple[int, int]] = []
    report = await replay(
        target, consumers, db, kafka_settings, progress=lambda d, t: seen.append((d, t))
    )
    first = await snapshot(db)
    assert report.records == len(published) + 1
    assert report.dead_lettered == 0
    assert sorted(e[0] for e in first["events"]) == sorted(e.id for e in published)
    # u3 left: a tombstone, whichever of added and removed was read first.
    assert [m[:3] for m in first["members"]] == [
        ("team-a", "u1", True),
        ("team-a", "u2", True),
        ("team-a", "u3", False),
        ("team-b", "x1", True),
    ]
    assert seen[0] == (0, report.records) and seen[-1] == (report.records, report.records)

    again = await replay(target, consumers, db, kafka_settings)
    assert again.records == report.records
    assert await snapshot(db) == first


async def test_rebuild_equals_the_live_result(
    target: ReplayTarget,
    consumers: EventConsumers,
    db: Database,
    broker: Bus,
    kafka_settings: KafkaSettings,
    published: list[Envelope],
) -> None:
    analytics.HANDLERS.subscribe(consumers, broker)
    await broker.start()

    async def all_landed() -> bool:
        return len((await snapshot(db))["events"]) == len(published)

    await eventually(all_landed, timeout_s=30)
    live = await snapshot(db)

    report = await replay(target, consumers, db, kafka_settings, rebuild=True)
    assert report.records == len(published) + 1
    assert await snapshot(db) == live


async def test_a_poison_record_mid_replay_is_dead_lettered_and_the_rest_land(
    target: ReplayTarget,
    consumers: EventConsumers,
    db: Database,
    kafka_settings: KafkaSettings,
    producer: KafkaProducer,
) -> None:
    # One user: one key, one partition, so the poison sits between the two logins.
    before, after = login("u9", datetime.now(UTC)), login("u9", datetime.now(UTC))
    await producer.publish(before)
    raw = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await raw.start()
    try:
        await raw.send_and_wait("user.logged_in", b"not json", key=b"u9")
        await raw.send_and_wait(
            "user.logged_in",
            after.value(),
            key=after.key,
            headers=[(k, v.encode()) for k, v in after.headers().items()],
        )
    finally:
        await raw.stop()

    report = await replay(target, consumers, db, kafka_settings, topics=["user.logged_in"])

    assert (report.records, report.handled, report.dead_lettered) == (3, 2, 1)
    assert {e[0] for e in (await snapshot(db))["events"]} == {before.id, after.id}
    (dead,) = await read_all(kafka_settings, "user.logged_in.dlq")
    assert dead.value == b"not json"
    assert headers(dead)["dlq_consumer"] == "analytics"


async def test_since_skips_older_records_and_bad_requests_are_refused(
    target: ReplayTarget,
    consumers: EventConsumers,
    db: Database,
    kafka_settings: KafkaSettings,
    published: list[Envelope],
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    report = await replay(target, consumers, db, kafka_settings, since=later)
    assert report.records == 0
    assert (await snapshot(db))["events"] == []
    with pytest.raises(ReplayError, match="does not consume"):
        await replay(target, consumers, db, kafka_settings, topics=["no.such.topic"])
    with pytest.raises(ReplayError, match="from the beginning"):
        await replay(target, consumers, db, kafka_settings, since=later, rebuild=True)


async def test_a_record_at_a_time_service_rebuilds_too(
    consumers: EventConsumers,
    db: Database,
    kafka_settings: KafkaSettings,
    published: list[Envelope],
) -> None:
    from services.notifications.models import TeamMember as NotificationMember

    target = replay_targets()["notifications.memberships"]
    await replay(target, consumers, db, kafka_settings, rebuild=True)

    async def members() -> list[tuple[str, str, str, bool]]:
        async with db.read() as session:
            return sorted(
                (m.team_id, m.user_id, m.role, m.active)
                for m in (await session.execute(select(NotificationMember))).scalars()
            )

    # u3's addition and removal are on two topics, read in either order: the
    # latest change wins and the removal stays as a tombstone, so u3 is out
    # whichever came first, as live.
    assert await members() == [
        ("team-a", "u1", "owner", True),
        ("team-a", "u2", "member", True),
        ("team-a", "u3", "member", False),
        ("team-b", "x1", "owner", True),
    ]
    again = await replay(target, consumers, db, kafka_settings)
    assert again.duplicates == again.records  # processed records make it idempotent
    # A rebuild replays over the live rows instead of emptying them: no live
    # notification finds its team without members meanwhile, and it ends equal.
    before = await members()
    seen: list[list[tuple[str, str, str, bool]]] = []

    async def watching(done: int, total: int) -> None:
        seen.append(await members())

    tasks: list[asyncio.Task[None]] = []
    await replay(
        target,
        consumers,
        db,
        kafka_settings,
        rebuild=True,
        progress=lambda done, total: tasks.append(asyncio.create_task(watching(done, total))),
    )
    await asyncio.gather(*tasks)
    assert seen and all(snapshot == before for snapshot in seen)
    assert await members() == before


async def test_a_replay_that_stops_short_of_its_end_offsets_says_so(
    consumers: EventConsumers,
    db: Database,
    kafka: EmbeddedBroker,
    kafka_settings: KafkaSettings,
    published: list[Envelope],
) -> None:
    target = replay_targets()["notifications.memberships"]
    tansu = tansu_pid(kafka)
    started = asyncio.Event()

    def freeze_once_started(done: int, total: int) -> None:
        if total and not started.is_set():
            started.set()
            os.kill(tansu, signal.SIGSTOP)  # the broker stops answering mid-replay

    try:
        with pytest.raises(ReplayIncomplete, match="short of the end offsets"):
            await replay(
                target,
                consumers,
                db,
                kafka_settings,
                progress=freeze_once_started,
                idle_timeout_s=1.0,
            )
    finally:
        os.kill(tansu, signal.SIGCONT)
    assert started.is_set()


async def test_an_llm_rebuild_keeps_paying_teams_on_their_plan_while_it_runs(
    consumers: EventConsumers, db: Database, kafka_settings: KafkaSettings
) -> None:
    from services.llm.models import TeamPlan

    # A paying team whose subscription event is somewhere in the topic: the
    # rebuild must not drop it to the default plan until the replay reaches it.
    async with db.transaction() as session:
        session.add(
            TeamPlan(
                team_id="paying",
                subscription_id="sub_1",
                plan_id="team",
                status="active",
                event_time=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
    plans: list[str | None] = []

    async def plan_now() -> None:
        async with db.read() as session:
            row = await session.get(TeamPlan, "paying")
            plans.append(None if row is None else row.plan_id)

    tasks: list[asyncio.Task[None]] = []
    await replay(
        replay_targets()["llm"],
        consumers,
        db,
        kafka_settings,
        rebuild=True,
        progress=lambda done, total: tasks.append(asyncio.create_task(plan_now())),
    )
    await asyncio.gather(*tasks)
    assert plans and set(plans) == {"team"}
