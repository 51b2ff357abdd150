"""Identity tables: the users a server knows and the bearer tokens they authenticate with.

Created by migration 0006. A token's primary key is its public id (the middle of
``myd_<id>_<secret>``), so a request is authenticated by one primary-key read; only a hash of
the secret is stored. Nothing is deleted: a disabled user and a revoked token keep their rows
so the audit log's names keep pointing at something.
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table

from modelyard.storage.sql.schema import Id, UTCDateTime, metadata

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("disabled_at", UTCDateTime, nullable=True),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(16), primary_key=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("name", String(128), nullable=False, server_default=""),
    Column("secret_hash", String(80), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    Index("ix_tokens_user", "user_id", "id"),
)
