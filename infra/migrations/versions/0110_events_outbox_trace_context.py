"""outbox: the trace context of the request that added each event

Revision ID: 0110_events
Revises: 0100_events
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0110_events"
down_revision: str | None = "0100_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites nothing, and rows already pending
    # simply have no trace to continue.
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("trace_context", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("trace_context")
