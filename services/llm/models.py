"""Tables only the LLM gateway touches: its read model of each team's plan."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base


class TeamPlan(Base):
    """A team's plan as subscription events last told it; no row: the default plan."""

    __tablename__ = "llm_team_plans"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(64))
    plan_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    # From the event's entitlements; None: the settings' default for the plan.
    tokens_per_period: Mapped[int | None] = mapped_column(BigInteger)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    tokens_per_minute: Mapped[int | None] = mapped_column(BigInteger)
    period_end: Mapped[datetime | None] = mapped_column()
    # The time of the event this row reflects: an older event never overwrites it.
    event_time: Mapped[datetime] = mapped_column()
