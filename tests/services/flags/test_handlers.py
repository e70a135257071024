"""The plan read model, from billing's subscription events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events.envelope import Envelope
from haunted.runtime import Haunted
from schemas import SubscriptionActivated, SubscriptionCanceled, SubscriptionUpdated
from services.flags.handlers import on_subscription_event
from services.flags.models import TeamPlan

NOW = datetime.now(UTC)


async def apply(app: Haunted, event: object, at: datetime) -> None:
    async with app.db.transaction() as session:
        envelope = Envelope.wrap(event, time=at)  # type: ignore[arg-type]
        await on_subscription_event(session, event, envelope)  # type: ignore[arg-type]


async def plan(app: Haunted) -> tuple[str, str] | None:
    async with app.db.read() as session:
        row = await session.get(TeamPlan, "t1")
    return None if row is None else (row.plan_id, row.status)


async def test_newest_event_wins_and_late_ones_change_nothing(flags_app: Haunted) -> None:
    common = {"team_id": "t1", "subscription_id": "sub_1", "current_period_end": NOW}
    await apply(flags_app, SubscriptionActivated(plan_id="pro", status="active", **common), NOW)
    assert await plan(flags_app) == ("pro", "active")
    await apply(
        flags_app,
        SubscriptionCanceled(team_id="t1", subscription_id="sub_1", plan_id="pro", canceled_at=NOW),
        NOW + timedelta(seconds=2),
    )
    assert await plan(flags_app) == ("pro", "canceled")
    late = SubscriptionUpdated(plan_id="team", status="active", **common)
    await apply(flags_app, late, NOW + timedelta(seconds=1))
    assert await plan(flags_app) == ("pro", "canceled")
