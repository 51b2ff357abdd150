"""Tracking tables: experiments, runs, run params/tags/metrics, run artifacts and inputs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A migration is a frozen snapshot: its types are spelled here, not imported from schema.py.
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ts = sa.DateTime()
_run_id = sa.String(32)


def _run_fk() -> sa.Column[str]:
    return sa.Column("run_id", _run_id, sa.ForeignKey("runs.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("tags", _json, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
    )
    op.create_table(
        "runs",
        sa.Column("id", _run_id, primary_key=True),
        sa.Column("experiment_id", _id, sa.ForeignKey("experiments.id"), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("start_time", _ts, nullable=False),
        sa.Column("end_time", _ts, nullable=True),
        sa.Column("git", _json, nullable=True),
        sa.Column("environment", _json, nullable=False),
    )
    op.create_index("ix_runs_experiment", "runs", ["experiment_id", "start_time"])
    op.create_table(
        "run_params",
        sa.Column("run_id", _run_id, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "run_tags",
        sa.Column("run_id", _run_id, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "run_metrics",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        _run_fk(),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("timestamp", _ts, nullable=False),
    )
    op.create_index("ix_run_metrics_run_key_step", "run_metrics", ["run_id", "key", "step"])
    op.create_table(
        "run_artifacts",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        _run_fk(),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("artifact_name", sa.String(512), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("flavor", sa.String(32), nullable=True),
        sa.Column("created_at", _ts, nullable=False),
        sa.UniqueConstraint("run_id", "path", name="uq_run_artifacts_path"),
    )
    op.create_table(
        "run_inputs",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        _run_fk(),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("dataset", _json, nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.UniqueConstraint("run_id", "digest", name="uq_run_inputs_digest"),
    )


def downgrade() -> None:
    for table in ("run_inputs", "run_artifacts", "run_metrics", "run_tags", "run_params",
                  "runs", "experiments"):
        op.drop_table(table)
