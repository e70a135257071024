"""`haunted seed` (haunted/seed.py): the demo data, through the facades, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from events.db import Base
from haunted.runtime import Haunted
from haunted.seed import DAYS, FUNNEL, PASSWORD, PLAN, ROLES, email, month_of_events, seed
from haunted.settings import Settings
from services.principal import Principal
from tests.conftest import eventually


def dev(settings: Settings) -> Settings:
    """As `make dev` runs: the offline checkout on."""
    return settings.model_copy(update={"env": "dev", "billing_local_checkout": True})


@pytest.fixture
async def dev_facades(offline_settings: Settings) -> AsyncIterator[Haunted]:
    """The facades of a built, not started, dev process: no broker (as `haunted seed`)."""
    app = Haunted.build(dev(offline_settings), gateway=False, workers=())
    try:
        yield app
    finally:
        await app.services.llm.close()
        await app.redis.aclose()
        await app.db.dispose()


async def row_counts(app: Haunted) -> dict[str, int]:
    """Every table's row count (the outbox's included: no event is written twice)."""
    async with app.db.read() as session:
        return {
            name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in Base.metadata.tables.items()
        }


async def signed_in(app: Haunted, role: str) -> Principal:
    result = await app.services.auth.login(email(role), PASSWORD)
    return await app.services.auth.authenticate(result.token)


async def test_a_second_run_adds_nothing(dev_facades: Haunted) -> None:
    before = await row_counts(dev_facades)
    first = await seed(dev_facades.services)
    after_first = await row_counts(dev_facades)
    second = await seed(dev_facades.services)
    assert await row_counts(dev_facades) == after_first

    assert first.seeded and not second.seeded
    assert first.plan == PLAN and first.prompts > 0 and first.events > 0
    added = {name: after_first[name] - before[name] for name in before}
    assert added["auth_users"] == 4
    # Everything it wrote went out as events: the prompt calls, the imported month, ...
    assert added["outbox"] >= first.prompts + first.events
    owner = await signed_in(dev_facades, "owner")
    members = await dev_facades.services.teams.members(owner, team_id=first.team_id)
    assert sorted(member.role for member in members) == sorted(("owner", *ROLES))
    subscription = await dev_facades.services.billing.my_subscription(owner, team_id=first.team_id)
    assert subscription is not None and subscription.plan.id == PLAN


def test_the_month_is_a_month_the_same_each_time_and_a_narrowing_funnel() -> None:
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    users = ["u1", "u2", "u3", "u4"]
    events = month_of_events(users, "team-1", now)
    assert events == month_of_events(users, "team-1", now)
    assert len({event.id for event in events}) == len(events)
    assert all(now - timedelta(days=DAYS + 1) <= event.time < now for event in events)
    assert len({event.time.date() for event in events}) >= DAYS // 2
    counts = [sum(event.name == step for event in events) for step in FUNNEL]
    assert counts[0] > counts[1] > counts[2] > 0


async def test_the_instance_applies_the_seeded_events(settings: Settings) -> None:
    """Seeded with no broker running (as from the command line), then applied by a
    running instance: its relay publishes the outbox, its consumers fill the inboxes
    and the analytics store the dashboards read."""
    seeder = Haunted.build(dev(settings), gateway=False, workers=())
    try:
        report = await seed(seeder.services)
    finally:
        await seeder.services.llm.close()
        await seeder.redis.aclose()
        await seeder.db.dispose()
    assert report.seeded

    async with Haunted.build(settings).running() as app:
        owner = await signed_in(app, "owner")
        polls = iter(range(1_000_000))

        async def counted() -> bool:
            # A different `since` each time: the analytics answer cache is not asked.
            since = datetime.now(UTC) - timedelta(days=DAYS + 2, microseconds=next(polls))
            counts = await app.services.analytics.event_counts(
                owner, list(FUNNEL), since, team_id=report.team_id
            )
            return sum(count.count for count in counts) == report.events

        await eventually(counted, timeout_s=60)

        # The invited see that they joined (their own event: no read model to wait on).
        admin = await signed_in(app, "admin")

        async def notified() -> bool:
            inbox = await app.services.notifications.notifications(admin)
            return "You joined a team" in [notification.title for notification in inbox]

        await eventually(notified, timeout_s=60)
