"""Governance tables: model policies, promotion requests, request decisions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# A migration is a frozen snapshot: its types are spelled here, not imported from schema.py.
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ts = sa.DateTime()


def upgrade() -> None:
    op.create_table(
        "model_policies",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("model_id", _id, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("approvals", sa.Integer(), nullable=False),
        sa.Column("reviewers", _json, nullable=False),
        sa.Column("gates", _json, nullable=False),
        sa.Column("allow_self_approval", sa.Boolean(), nullable=False),
        sa.Column("rollback_needs_approval", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.UniqueConstraint("model_id", "policy_version", name="uq_model_policies_version"),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("model_id", _id, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("version_id", _id, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(256), nullable=False),
        sa.Column("requested_at", _ts, nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("production_version", sa.Integer(), nullable=True),
        sa.Column("gates", _json, nullable=False),
        sa.Column("closed_by", sa.String(256), nullable=True),
        sa.Column("closed_at", _ts, nullable=True),
        sa.Column("close_reason", sa.Text(), server_default="", nullable=False),
    )
    op.create_index("ix_promotion_requests_model_status", "promotion_requests",
                    ["model_id", "status"])
    op.create_table(
        "request_decisions",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("request_id", _id, sa.ForeignKey("promotion_requests.id"), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("decided_at", _ts, nullable=False),
        sa.UniqueConstraint("request_id", "actor", name="uq_request_decisions_actor"),
    )


def downgrade() -> None:
    op.drop_table("request_decisions")
    op.drop_index("ix_promotion_requests_model_status", table_name="promotion_requests")
    op.drop_table("promotion_requests")
    op.drop_table("model_policies")
