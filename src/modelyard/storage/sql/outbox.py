"""The webhook outbox's one writer: the audit log, in the transaction that records events.

Called just before that transaction commits, after its events got their seqs, so a change
that commits has its deliveries queued and one that rolls back has none (a transactional
outbox). One row per (subscription, event) the subscription asked for; disabled and paused
subscriptions keep queueing, so enabling one resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from modelyard.domain.webhooks import ALL_EVENTS, EVENT_TYPES
from modelyard.storage.sql.webhooks_schema import webhook_outbox, webhooks

_SUBSCRIBERS = (select(webhooks.c.id, webhooks.c.events, webhooks.c.model)
                .where(webhooks.c.deleted_at.is_(None)))  # built once: every change reads it


def enqueue(conn: Connection, events: Sequence[dict[str, Any]]) -> None:
    """Queue ``events`` (audit rows with ``seq``, ``action``, ``model``) for every
    subscription that receives them; a change with no event type costs no query."""
    typed = [e for e in events if e["action"] in EVENT_TYPES]
    if not typed:
        return
    subscribers = conn.execute(_SUBSCRIBERS).all()
    rows = [{"webhook_id": hook.id, "seq": e["seq"], "queue": e["model"] or ""}
            for e in typed for hook in subscribers
            if (ALL_EVENTS in hook.events or EVENT_TYPES[e["action"]] in hook.events)
            and (hook.model is None or hook.model == e["model"])]
    if rows:
        conn.execute(webhook_outbox.insert(), rows)
