"""notifications: the team notification log (late members get what they missed), erased users

Revision ID: 0430_notifications
Revises: 0420_notifications
Create Date: 2026-12-05 23:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0430_notifications'
down_revision: str | None = '0420_notifications'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notification_team_log',
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('permission', sa.String(length=50), nullable=True),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('data', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('team_id', 'event_id', name=op.f('pk_notification_team_log'))
    )
    op.create_table('notification_erased_users',
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_erased_users'))
    )
    with op.batch_alter_table('notification_team_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_team_log_event_time'), ['event_time'], unique=False)
        batch_op.create_index('ix_notification_team_log_team_id_event_time', ['team_id', 'event_time'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notification_team_log', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_team_log_team_id_event_time')
        batch_op.drop_index(batch_op.f('ix_notification_team_log_event_time'))
    op.drop_table('notification_team_log')
    op.drop_table('notification_erased_users')
