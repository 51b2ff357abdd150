"""Initial schema: models, versions, aliases, the audit chain and its head.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# A migration is a frozen snapshot: its types are spelled here, not imported from schema.py.
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ts = sa.DateTime()
GENESIS_HASH = "blake3:" + "0" * 64


def upgrade() -> None:
    state = op.create_table(
        "registry_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("last_event_hash", sa.String(80), nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "event_count": 0, "last_event_hash": GENESIS_HASH}])
    op.create_table(
        "models",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("tags", _json, nullable=False),
        sa.Column("last_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.Column("deleted_at", _ts, nullable=True),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("model_id", _id, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("artifact_kind", sa.String(8), nullable=False),
        sa.Column("artifact_name", sa.String(512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("params", _json, nullable=False),
        sa.Column("metrics", _json, nullable=False),
        sa.Column("tags", _json, nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("lineage", _json, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("updated_at", _ts, nullable=False),
        sa.Column("deleted_at", _ts, nullable=True),
        sa.UniqueConstraint("model_id", "version", name="uq_model_versions_number"),
    )
    op.create_index("ix_model_versions_digest", "model_versions", ["digest"])
    op.create_index(
        "uq_model_versions_one_production",
        "model_versions",
        ["model_id"],
        unique=True,
        sqlite_where=sa.text("stage = 'production'"),
        postgresql_where=sa.text("stage = 'production'"),
    )
    op.create_table(
        "aliases",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("model_id", _id, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("version_id", _id, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.UniqueConstraint("model_id", "alias", name="uq_aliases_model_alias"),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=False),
        sa.Column("at", _ts, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("before", _json, nullable=True),
        sa.Column("after", _json, nullable=True),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("prev_hash", sa.String(80), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
    )
    op.create_index("ix_audit_events_model", "audit_events", ["model", "seq"])


def downgrade() -> None:
    for table in ("audit_events", "aliases", "model_versions", "models", "registry_state"):
        op.drop_table(table)
