"""analytics: two indexes for the questions instead of four

Revision ID: 0710_analytics
Revises: 0700_analytics
Create Date: 2026-11-27 07:30:00.000000

The questions (eventCounts, activeUsers, funnel, usage) read a team's events
through one covering index, and the team-less events of its members through
another; both are partial, so that each event is written into one of them. The
four earlier indexes go. On PostgreSQL the indexes are built
and dropped CONCURRENTLY, outside the migration's transaction, so that a large
table keeps taking events (and answering questions) meanwhile.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0710_analytics'
down_revision: str | None = '0700_analytics'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = 'analytics_events'
IN_A_TEAM = sa.text('team_id IS NOT NULL')
TEAMLESS = sa.text('team_id IS NULL')
NEW = {
    'ix_analytics_events_team_covering': (['team_id', 'type', 'time', 'user_id', 'id'], IN_A_TEAM),
    'ix_analytics_events_teamless_user': (['user_id', 'time', 'type', 'id'], TEAMLESS),
}
OLD = {
    'ix_analytics_events_team_type_time': ['team_id', 'type', 'time'],
    'ix_analytics_events_user_type_time': ['user_id', 'type', 'time'],
    'ix_analytics_events_team_time': ['team_id', 'time'],
    'ix_analytics_events_user_time': ['user_id', 'time'],
}


def _postgresql() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def upgrade() -> None:
    # New ones first: the questions always have an index to use.
    if _postgresql():
        with op.get_context().autocommit_block():
            for name, (columns, where) in NEW.items():
                op.create_index(
                    name, TABLE, columns, postgresql_where=where, postgresql_concurrently=True
                )
            for name in OLD:
                op.drop_index(name, table_name=TABLE, postgresql_concurrently=True)
        return
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name, (columns, where) in NEW.items():
            batch_op.create_index(name, columns, unique=False, sqlite_where=where)
        for name in OLD:
            batch_op.drop_index(name)


def downgrade() -> None:
    if _postgresql():
        with op.get_context().autocommit_block():
            for name, columns in OLD.items():
                op.create_index(name, TABLE, columns, postgresql_concurrently=True)
            for name in NEW:
                op.drop_index(name, table_name=TABLE, postgresql_concurrently=True)
        return
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name, columns in OLD.items():
            batch_op.create_index(name, columns, unique=False)
        for name in NEW:
            batch_op.drop_index(name)
