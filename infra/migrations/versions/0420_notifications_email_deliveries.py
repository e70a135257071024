"""notifications: email deliveries (one per event and recipient), known devices

Revision ID: 0420_notifications
Revises: 0410_notifications
Create Date: 2026-12-05 19:50:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0420_notifications'
down_revision: str | None = '0410_notifications'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('email_deliveries',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('recipient', sa.String(length=100), nullable=False),
    sa.Column('template', sa.String(length=50), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('event_id', 'recipient', name=op.f('pk_email_deliveries'))
    )
    op.create_table('email_known_devices',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('device', sa.String(length=64), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', 'device', name=op.f('pk_email_known_devices'))
    )


def downgrade() -> None:
    op.drop_table('email_known_devices')
    op.drop_table('email_deliveries')
