"""Identity tables: users (one role each) and their bearer tokens (only a hash of the secret).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# A migration is a frozen snapshot: its types are spelled here, not imported from schema.py.
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ts = sa.DateTime()


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("disabled_at", _ts, nullable=True),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("user_id", _id, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(128), server_default="", nullable=False),
        sa.Column("secret_hash", sa.String(80), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("expires_at", _ts, nullable=True),
        sa.Column("revoked_at", _ts, nullable=True),
        sa.Column("last_used_at", _ts, nullable=True),
    )
    op.create_index("ix_tokens_user", "tokens", ["user_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_tokens_user", table_name="tokens")
    op.drop_table("tokens")
    op.drop_table("users")
