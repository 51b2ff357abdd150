"""Webhook tables: subscriptions, the outbox of events to deliver, and every attempt.

Created by migration 0008. The outbox holds one row per (subscription, audit event) still
to be delivered, written by the audit log in the transaction that records the event, and
deleted once the receiver answered 2xx. Subscriptions are deleted softly, their secret
wiped, so the delivery log and the audit log keep pointing at something.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from modelyard.storage.sql.schema import Id, JsonType, UTCDateTime, metadata

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", String(2048), nullable=False),
    Column("events", JsonType, nullable=False),
    Column("model", String(128), nullable=True),
    Column("secret", Text, nullable=False),  # Fernet token (MODELYARD_WEBHOOK_KEY); "" deleted
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=False, server_default=""),
    Column("status_changed_at", UTCDateTime, nullable=True),
    Column("created_by", String(256), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime, nullable=True),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("webhook_id", Id, ForeignKey("webhooks.id"), nullable=False),
    Column("seq", BigInteger, nullable=False),  # the audit event to deliver
    Column("queue", String(128), nullable=False),  # its model ("" for none): order per queue
    Column("attempt", Integer, nullable=False, server_default="0"),  # attempts claimed so far
    Column("failing_since", UTCDateTime, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),  # a worker is attempting it until then
    Index("ix_webhook_outbox_queue", "webhook_id", "queue", "seq"),  # is a row its queue's head
    Index("ix_webhook_outbox_seq", "seq"),  # claims walk the outbox oldest first
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("webhook_id", Id, ForeignKey("webhooks.id"), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("seq", BigInteger, nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("response", Text, nullable=False, server_default=""),
    Column("error", Text, nullable=False, server_default=""),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
    Index("ix_webhook_deliveries_event", "webhook_id", "event_id"),
)
