"""Flags keeps its own read model of each team's plan, from billing's subscription events."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from events.envelope import Envelope
from events.handlers import Handlers
from schemas import Event, SubscriptionActivated, SubscriptionCanceled, SubscriptionUpdated
from services.flags.models import TeamPlan

CONSUMER = "flags"  # the consumer group's name: deployed state, never renamed
SUBSCRIPTION_EVENTS = (SubscriptionActivated, SubscriptionUpdated, SubscriptionCanceled)
# A canceled subscription leaves the team on the default plan: no plan row at all.
CANCELED = "canceled"


async def on_subscription_event(session: AsyncSession, event: Event, envelope: Envelope) -> None:
    """Applies the newest subscription event per team; a late older one changes nothing."""
    assert isinstance(event, SubscriptionActivated | SubscriptionUpdated | SubscriptionCanceled)
    row = await session.get(TeamPlan, event.team_id)
    as_of = envelope.time
    if row is not None and row.as_of > as_of:
        return
    status = CANCELED if isinstance(event, SubscriptionCanceled) else event.status
    if row is None:
        session.add(
            TeamPlan(team_id=event.team_id, plan_id=event.plan_id, status=status, as_of=as_of)
        )
    else:
        row.plan_id, row.status, row.as_of = event.plan_id, status, as_of


def build_handlers(on_plan_changed: Callable[[str], None] | None = None) -> Handlers:
    """`on_plan_changed(team_id)` lets a facade in the same process forget its cached plan."""
    handlers = Handlers(CONSUMER)

    @handlers.on(*SUBSCRIPTION_EVENTS)
    async def handle(session: AsyncSession, event: Event, envelope: Envelope) -> None:
        await on_subscription_event(session, event, envelope)
        if on_plan_changed is not None and hasattr(event, "team_id"):
            on_plan_changed(event.team_id)

    return handlers


async def clear_store(session: AsyncSession) -> None:
    """Empties the plans read model before a rebuild."""
    await session.execute(delete(TeamPlan))


__all__ = ["CONSUMER", "build_handlers", "clear_store", "on_subscription_event"]
