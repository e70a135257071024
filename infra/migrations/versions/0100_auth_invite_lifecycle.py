"""auth: invite lifecycle (the invited email sealed for listing, revocation)

Revision ID: 0100_auth
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0100_auth"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("auth",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auth_invites") as table:
        # Sealed with the PII key ring, as users' emails are: listed to the team's admins.
        table.add_column(sa.Column("email_key_id", sa.String(length=32), nullable=True))
        table.add_column(sa.Column("email_ciphertext", sa.LargeBinary(), nullable=True))
        table.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_invites") as table:
        table.drop_column("revoked_at")
        table.drop_column("email_ciphertext")
        table.drop_column("email_key_id")
