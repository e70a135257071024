"""auth: per-user data keys (crypto-shredding), the erasure ledger, sessions' client
sealed with the user's key

Revision ID: 0110_auth
Revises: 0100_auth

The sessions' client address and user agent were kept in clear: they only labelled
sessions in the list, so the old values are dropped rather than moved (sealing them
needs the users' keys, which a migration does not hold). Addresses sealed with the
PII ring are re-sealed with data keys by `haunted migrate`'s data step
(haunted/privacy.py), which holds the keys.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0110_auth"
down_revision: str | None = "0100_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_user_keys",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("ring_key_id", sa.String(length=32), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_auth_user_keys")),
    )
    op.create_table(
        "auth_erasures",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("anonymous_id", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_auth_erasures")),
    )
    with op.batch_alter_table("auth_sessions") as table:
        table.add_column(sa.Column("client_ciphertext", sa.LargeBinary(), nullable=True))
        table.drop_column("ip")
        table.drop_column("user_agent")


def downgrade() -> None:
    with op.batch_alter_table("auth_sessions") as table:
        table.add_column(sa.Column("user_agent", sa.String(length=300), nullable=True))
        table.add_column(sa.Column("ip", sa.String(length=64), nullable=True))
        table.drop_column("client_ciphertext")
    op.drop_table("auth_erasures")
    op.drop_table("auth_user_keys")
