"""events: processed_events purged by time

Revision ID: 0100_events
Revises: 0001
Create Date: 2026-12-05 19:20:00.000000

The idempotency rows of the consumers grow with every event handled; they are
kept for HAUNTED_PROCESSED_EVENTS_RETENTION_S and then purged by this index.
On PostgreSQL it is built CONCURRENTLY, outside the migration's transaction,
so that a large table keeps taking rows meanwhile.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0100_events"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None  # the foundation's own tables
depends_on: str | Sequence[str] | None = None

TABLE = "processed_events"
INDEX = "ix_processed_events_processed_at"


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        with op.get_context().autocommit_block():
            op.create_index(INDEX, TABLE, ["processed_at"], postgresql_concurrently=True)
        return
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(INDEX, ["processed_at"], unique=False)


def downgrade() -> None:
    if _postgresql():
        with op.get_context().autocommit_block():
            op.drop_index(INDEX, table_name=TABLE, postgresql_concurrently=True)
        return
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(INDEX)
