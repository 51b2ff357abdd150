"""An index of the events that give a model its name (``model.create``, ``model.rename``).

A renamed model's events are stored under each name it had; finding where each name starts
(``audit_log.model_spans``) is one seek per name with ``action`` in the index, instead of a
walk back over every event the model has.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_model_action", "audit_events", ["model", "action", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_model_action", table_name="audit_events")
