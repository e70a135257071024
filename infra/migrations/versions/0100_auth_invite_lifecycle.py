"""auth: invite lifecycle (the invited email sealed for listing, revocation); email
verification and password reset tokens; TOTP second factors and recovery codes

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
    with op.batch_alter_table("auth_users") as table:
        table.add_column(
            sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("auth_teams") as table:
        table.add_column(
            sa.Column(
                "require_two_factor", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "auth_account_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth_users.id"],
            name=op.f("fk_auth_account_tokens_user_id_auth_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_account_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_auth_account_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_auth_account_tokens_user_id"), "auth_account_tokens", ["user_id"], unique=False
    )
    op.create_table(
        "auth_second_factors",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth_users.id"], name=op.f("fk_auth_second_factors_user_id_auth_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_auth_second_factors")),
    )
    op.create_table(
        "auth_recovery_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["auth_users.id"], name=op.f("fk_auth_recovery_codes_user_id_auth_users")
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_auth_recovery_codes")),
    )
    op.create_index(
        op.f("ix_auth_recovery_codes_user_id"), "auth_recovery_codes", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_auth_recovery_codes_user_id"), table_name="auth_recovery_codes")
    op.drop_table("auth_recovery_codes")
    op.drop_table("auth_second_factors")
    op.drop_index(op.f("ix_auth_account_tokens_user_id"), table_name="auth_account_tokens")
    op.drop_table("auth_account_tokens")
    with op.batch_alter_table("auth_teams") as table:
        table.drop_column("require_two_factor")
    with op.batch_alter_table("auth_users") as table:
        table.drop_column("email_verified_at")
    with op.batch_alter_table("auth_invites") as table:
        table.drop_column("revoked_at")
        table.drop_column("email_ciphertext")
        table.drop_column("email_key_id")
