"""audit: the audit log and its membership stretches

Revision ID: 0900_audit
Revises: 0001
Create Date: 2026-12-05 19:55:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0900_audit'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = ('audit',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_entries',
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('team_id', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.String(length=64), nullable=True),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_audit_entries'))
    )
    op.create_index('ix_audit_entries_team_time', 'audit_entries', ['team_id', 'occurred_at', 'event_id'], unique=False)
    op.create_index('ix_audit_entries_user_time', 'audit_entries', ['user_id', 'occurred_at'], unique=False)
    op.create_table('audit_memberships',
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('team_id', 'user_id', 'joined_at', name=op.f('pk_audit_memberships'))
    )


def downgrade() -> None:
    op.drop_table('audit_memberships')
    op.drop_index('ix_audit_entries_user_time', table_name='audit_entries')
    op.drop_index('ix_audit_entries_team_time', table_name='audit_entries')
    op.drop_table('audit_entries')
