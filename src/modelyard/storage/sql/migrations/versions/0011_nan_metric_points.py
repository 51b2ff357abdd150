"""Metric points may be NaN, stored as NULL (``schema.MetricValue``).

SQLite cannot keep NaN in a REAL column, so logging ``loss = nan`` failed there while
PostgreSQL took it; now both store NaN as NULL and read it back as NaN.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_metrics") as table:
        table.alter_column("value", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM run_metrics WHERE value IS NULL")
    with op.batch_alter_table("run_metrics") as table:
        table.alter_column("value", existing_type=sa.Float(), nullable=False)
