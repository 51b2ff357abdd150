"""Webhooks: subscriptions, the outbox of events still to deliver (written with the audit
event), and the log of every delivery attempt.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A migration is a frozen snapshot: its types are spelled here, not imported from schema.py.
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ts = sa.DateTime()
_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", _json, nullable=False),
        sa.Column("model", sa.String(128), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("status_changed_at", _ts, nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("created_at", _ts, nullable=False),
        sa.Column("deleted_at", _ts, nullable=True),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", _id, sa.ForeignKey("webhooks.id"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("queue", sa.String(128), nullable=False),
        sa.Column("attempt", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failing_since", _ts, nullable=True),
        sa.Column("next_attempt_at", _ts, nullable=True),
        sa.Column("lease_until", _ts, nullable=True),
    )
    op.create_index("ix_webhook_outbox_queue", "webhook_outbox", ["webhook_id", "queue", "seq"])
    op.create_index("ix_webhook_outbox_seq", "webhook_outbox", ["seq"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _id, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", _id, sa.ForeignKey("webhooks.id"), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("response", sa.Text(), server_default="", nullable=False),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("at", _ts, nullable=False),
    )
    op.create_index("ix_webhook_deliveries_webhook", "webhook_deliveries", ["webhook_id", "id"])
    op.create_index("ix_webhook_deliveries_event", "webhook_deliveries",
                    ["webhook_id", "event_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_event", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_webhook", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_outbox_seq", table_name="webhook_outbox")
    op.drop_index("ix_webhook_outbox_queue", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_table("webhooks")
