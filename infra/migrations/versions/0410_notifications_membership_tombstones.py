"""notifications: membership changes by time, removals as tombstones

Revision ID: 0410_notifications
Revises: 0400_notifications
Create Date: 2026-12-05 19:30:00.000000

Additions, role changes and removals come on different topics and may be read
in any order: each row keeps the time of its latest change, and a removal
stays as an inactive row so that an older addition read later cannot revive it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0410_notifications"
down_revision: str | None = "0400_notifications"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notification_team_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "changed_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("'1970-01-01 00:00:00+00:00'"),
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_team_members", schema=None) as batch_op:
        batch_op.drop_column("changed_at")
        batch_op.drop_column("active")
