"""The LLM gateway's read model of plans, fed by subscription events (replayable)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from events.envelope import Envelope
from events.handlers import Handlers
from schemas import Event, SubscriptionActivated, SubscriptionCanceled, SubscriptionUpdated
from services.llm.models import TeamPlan

CONSUMER = "llm"  # the consumer group's name: deployed state, never renamed
HANDLERS = Handlers(CONSUMER)


def _limit(entitlements: dict[str, Any] | None, name: str) -> int | None:
    value = (entitlements or {}).get(name)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@HANDLERS.on(SubscriptionActivated, SubscriptionUpdated, SubscriptionCanceled)
async def on_subscription(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """Keeps the team's latest plan; an older event (replay, reordering) changes nothing."""
    assert isinstance(event, SubscriptionActivated | SubscriptionUpdated | SubscriptionCanceled)
    row = await session.get(TeamPlan, event.team_id)
    if row is not None and row.event_time > envelope.time:
        return
    if row is None:
        row = TeamPlan(team_id=event.team_id)
        session.add(row)
    # Entitlements travel in the event's data when billing sends them (read raw, so
    # this works whatever the schema class declares); else settings give the plan's.
    raw = envelope.data.get("entitlements")
    entitlements = raw if isinstance(raw, dict) else None
    row.subscription_id = event.subscription_id
    row.event_time = envelope.time
    row.tokens_per_period = _limit(entitlements, "llm_tokens_per_month")
    row.requests_per_minute = _limit(entitlements, "llm_requests_per_minute")
    row.tokens_per_minute = _limit(entitlements, "llm_tokens_per_minute")
    if isinstance(event, SubscriptionCanceled):
        row.plan_id = event.plan_id
        row.status = "canceled"
        row.period_end = None
    else:
        row.plan_id = event.plan_id
        row.status = event.status
        row.period_end = event.current_period_end


__all__ = ["CONSUMER", "HANDLERS", "on_subscription"]
