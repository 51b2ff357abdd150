"""Params, metrics and tags of versions as indexed rows, so filters run in SQL.

``version_values`` holds one row per key with a numeric and a text reading of its value;
existing versions are backfilled from their JSON columns by the same rule the registry
writes new rows with (``storage.sql.filters.value_rows``): a backfill must agree with it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelyard.storage.sql.filters import value_rows

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 5000


def upgrade() -> None:
    values = op.create_table(
        "version_values",
        sa.Column("version_id", _id, sa.ForeignKey("model_versions.id"), primary_key=True),
        sa.Column("field", sa.String(8), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("kind", sa.String(1), nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("text_prefix", sa.String(200), nullable=True),
        sa.Column("num", sa.Double, nullable=True),
        sa.Column("approx", sa.Boolean, nullable=False),
    )
    op.create_index("ix_version_values_num", "version_values", ["field", "key", "num"])
    op.create_index("ix_version_values_text", "version_values", ["field", "key", "text_prefix"])
    op.create_index("ix_version_values_approx", "version_values", ["field", "key"],
                    sqlite_where=sa.text("approx = 1"), postgresql_where=sa.text("approx"))
    conn = op.get_bind()
    versions = sa.table("model_versions", sa.column("id"), sa.column("params", sa.JSON),
                        sa.column("metrics", sa.JSON), sa.column("tags", sa.JSON))
    rows: list[dict[str, object]] = []
    for v in conn.execute(sa.select(versions).order_by(versions.c.id)):
        rows += value_rows(v.id, v.params or {}, v.metrics or {}, v.tags or {})
        if len(rows) >= _BATCH:
            conn.execute(values.insert(), rows)
            rows = []
    if rows:
        conn.execute(values.insert(), rows)


def downgrade() -> None:
    op.drop_table("version_values")
