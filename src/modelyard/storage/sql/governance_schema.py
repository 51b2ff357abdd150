"""Governance tables: numbered immutable policies, promotion requests and their decisions.

Created by migration 0002. ``UNIQUE(request_id, actor)`` makes "each reviewer decides once" a
database fact, and ``UNIQUE(model_id, policy_version)`` keeps policy versions from forking.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from modelyard.storage.sql.schema import Id, JsonType, UTCDateTime, metadata

model_policies = Table(
    "model_policies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model_id", Id, ForeignKey("models.id"), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("approvals", Integer, nullable=False),
    Column("reviewers", JsonType, nullable=False),
    Column("gates", JsonType, nullable=False),
    Column("allow_self_approval", Boolean, nullable=False),
    Column("rollback_needs_approval", Boolean, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("model_id", "policy_version", name="uq_model_policies_version"),
)

promotion_requests = Table(
    "promotion_requests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model_id", Id, ForeignKey("models.id"), nullable=False),
    Column("version_id", Id, ForeignKey("model_versions.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_by", String(256), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("production_version", Integer, nullable=True),
    Column("gates", JsonType, nullable=False),
    Column("closed_by", String(256), nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("close_reason", Text, nullable=False, server_default=""),
    Index("ix_promotion_requests_model_status", "model_id", "status"),
)

request_decisions = Table(
    "request_decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("request_id", Id, ForeignKey("promotion_requests.id"), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("decision", String(8), nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("decided_at", UTCDateTime, nullable=False),
    UniqueConstraint("request_id", "actor", name="uq_request_decisions_actor"),
)
