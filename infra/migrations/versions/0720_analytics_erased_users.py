"""analytics: erased users, whose events are kept under an anonymous id

Revision ID: 0720_analytics
Revises: 0710_analytics
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0720_analytics"
down_revision: str | None = "0710_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_erased_users",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("anonymous_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_analytics_erased_users")),
    )


def downgrade() -> None:
    op.drop_table("analytics_erased_users")
