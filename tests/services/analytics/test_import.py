"""AnalyticsService.import_events: past events, each at its own time, or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from events.outbox import OutboxRecord
from haunted.runtime import Haunted
from services.analytics import PastEvent
from services.errors import BadUserInput

THEN = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def past(event_id: str, name: str = "page.viewed", time: datetime = THEN) -> PastEvent:
    return PastEvent(event_id, name, "user-1", "team-1", time, {"path": "/app"})


async def outbox(app: Haunted) -> list[tuple[str, str, datetime]]:
    async with app.db.read() as session:
        rows = await session.execute(
            select(OutboxRecord.event_id, OutboxRecord.topic, OutboxRecord.created_at)
        )
        return sorted(tuple(row) for row in rows.all())  # type: ignore[misc]


async def test_each_event_is_published_with_its_own_id_and_time(facades: Haunted) -> None:
    await facades.services.analytics.import_events([past("e-1"), past("e-2", "report.exported")])
    assert await outbox(facades) == [
        ("e-1", "analytics.tracked", THEN),
        ("e-2", "analytics.tracked", THEN),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        past("e-2", name="user.logged_in"),  # a domain event's type
        past("e-2", name="9lives"),
        past("e-2", time=datetime(2026, 11, 2, 9, 30)),  # no time zone
    ],
)
async def test_a_bad_event_refuses_the_whole_import(facades: Haunted, bad: PastEvent) -> None:
    with pytest.raises(BadUserInput):
        await facades.services.analytics.import_events([past("e-1"), bad])
    async with facades.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxRecord)) == 0
    await facades.services.analytics.import_events([past("e-3")])  # and then it works
    assert [row[0] for row in await outbox(facades)] == ["e-3"]
