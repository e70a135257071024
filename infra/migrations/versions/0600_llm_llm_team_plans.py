"""llm: team plans

Revision ID: 0600_llm
Revises: 0001
Create Date: 2026-11-26 04:53:39.135475
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0600_llm'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = ('llm',)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('llm_team_plans',
    sa.Column('team_id', sa.String(length=64), nullable=False),
    sa.Column('subscription_id', sa.String(length=64), nullable=False),
    sa.Column('plan_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('tokens_per_period', sa.BigInteger(), nullable=True),
    sa.Column('requests_per_minute', sa.Integer(), nullable=True),
    sa.Column('tokens_per_minute', sa.BigInteger(), nullable=True),
    sa.Column('period_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('event_time', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('team_id', name=op.f('pk_llm_team_plans'))
    )


def downgrade() -> None:
    op.drop_table('llm_team_plans')
