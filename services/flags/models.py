"""Tables only the flags service touches: its read model of each team's plan."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base


class TeamPlan(Base):
    """A team's current plan, built from billing's subscription events; no row means the default."""

    __tablename__ = "flags_team_plans"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    as_of: Mapped[datetime] = mapped_column()  # time of the event that set it
