"""flags: team plans read model

Revision ID: 0800_flags
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0800_flags"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("flags",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flags_team_plans",
        sa.Column("team_id", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_flags_team_plans")),
    )


def downgrade() -> None:
    op.drop_table("flags_team_plans")
