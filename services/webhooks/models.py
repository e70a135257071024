"""Tables only the webhooks service touches: endpoints and their deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base


class WebhookEndpoint(Base):
    """A team's receiver: where to POST, which event types, and its signing secrets."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[str] = mapped_column(Text)  # JSON list of topics
    # The secret signs, so it is sealed (AES-GCM, the PII ring), never hashed.
    secret_key_id: Mapped[str] = mapped_column(String(32))
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # After a rotation the old secret keeps signing beside the new one until then.
    previous_key_id: Mapped[str | None] = mapped_column(String(32))
    previous_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_until: Mapped[datetime | None] = mapped_column()
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    # The first failure since the last success: past the limit, the endpoint is disabled.
    failing_since: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class WebhookDelivery(Base):
    """One event for one endpoint: its CloudEvent body, its attempts and their outcome."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_endpoint_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_log", "endpoint_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the structured-mode CloudEvent JSON
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Due time while pending; a worker that claims it pushes it one lease ahead.
    next_attempt_at: Mapped[datetime] = mapped_column()
    response_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column()
    last_attempt_at: Mapped[datetime | None] = mapped_column()


class WebhookReplay(Base):
    """A replay asked for through the API, run by the delivery worker."""

    __tablename__ = "webhook_replays"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    since: Mapped[datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))  # pending | running | done | failed
    events: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
