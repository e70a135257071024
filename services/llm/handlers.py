"""The LLM gateway's read model of plans, fed by subscription events (replayable)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from events.envelope import Envelope
from events.handlers import Handlers
from schemas import (
    Entitlements,
    Event,
    SubscriptionActivated,
    SubscriptionCanceled,
    SubscriptionUpdated,
)
from services.llm.models import TeamPlan

CONSUMER = "llm"  # the consumer group's name: deployed state, never renamed
HANDLERS = Handlers(CONSUMER)


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
    # Entitlements travel in the event when billing sends them; a limit they leave out
    # (or an older record without them) is None: settings give the plan's.
    entitlements = event.entitlements or Entitlements()
    row.subscription_id = event.subscription_id
    row.event_time = envelope.time
    row.tokens_per_period = entitlements.llm_tokens_per_month
    row.requests_per_minute = entitlements.llm_requests_per_minute
    row.tokens_per_minute = entitlements.llm_tokens_per_minute
    if isinstance(event, SubscriptionCanceled):
        row.plan_id = event.plan_id
        row.status = "canceled"
        row.period_end = None
    else:
        row.plan_id = event.plan_id
        row.status = event.status
        row.period_end = event.current_period_end


__all__ = ["CONSUMER", "HANDLERS", "on_subscription"]
