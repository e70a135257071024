"""Tables only the billing service touches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from events.db import Base


class BillingCustomer(Base):
    """One Stripe customer per team, created once."""

    __tablename__ = "billing_customers"

    team_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column()


class BillingSubscription(Base):
    """A team's subscription as Stripe last said it, whatever order its events came in."""

    __tablename__ = "billing_subscriptions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's sub_...
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    plan_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    current_period_end: Mapped[datetime | None] = mapped_column()
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    canceled_at: Mapped[datetime | None] = mapped_column()
    # The Stripe event that set this state: (created, rank) orders the states, so an
    # older event that arrives late changes nothing.
    state_created: Mapped[int] = mapped_column(BigInteger)
    state_rank: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column()


class BillingInvoice(Base):
    __tablename__ = "billing_invoices"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's in_...
    team_id: Mapped[str] = mapped_column(String(64), index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(255))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(32))
    paid_at: Mapped[datetime | None] = mapped_column()
    # Highest failed attempt already reported: each attempt yields one payment.failed.
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)


class StripeWebhookEvent(Base):
    """Each Stripe event id handled once: its row commits with the event's effects."""

    __tablename__ = "billing_stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's evt_...
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column()


class LocalCheckoutSession(Base):
    """Offline (no Stripe key) checkout sessions, completed by the local test checkout."""

    __tablename__ = "billing_local_checkouts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # cs_local_...
    team_id: Mapped[str] = mapped_column(String(64))
    plan_id: Mapped[str] = mapped_column(String(64))
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
