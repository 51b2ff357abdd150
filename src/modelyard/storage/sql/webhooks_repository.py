"""Row-level queries for webhooks (see ``webhooks_schema``); nothing here commits.

The worker's guarantees rest on ``claim``: it takes the oldest due outbox row that is the
head of its queue (no earlier row of the same subscription and model is still pending),
locking it with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has one writer at a time
anyway), and numbers the attempt and leases the row in that transaction. So two workers
never make the same attempt, and a model's events reach a subscription in seq order, which
is commit order (the outbox is written under the chain's lock, see ``outbox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, func, or_, select, update

from modelyard.storage.sql.paging import keyset
from modelyard.storage.sql.webhooks_schema import webhook_deliveries, webhook_outbox, webhooks


@dataclass(frozen=True)
class WebhookRow:
    """A subscription, with how many deliveries it has queued."""

    id: int
    url: str
    events: list[str]
    model: str | None
    secret: str  # encrypted
    status: str
    status_reason: str
    status_changed_at: datetime | None
    created_by: str
    created_at: datetime
    deleted_at: datetime | None
    pending: int


@dataclass(frozen=True)
class Claim:
    """An outbox row a worker leased for one attempt, with what it needs to send it."""

    id: int
    webhook_id: int
    seq: int
    attempt: int  # this attempt's number
    failing_since: datetime | None
    url: str
    secret: str  # encrypted


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    webhook_id: int
    event_id: str
    event_type: str
    seq: int | None
    attempt: int
    trigger: str
    ok: bool
    status_code: int | None
    latency_ms: int
    response: str
    error: str
    at: datetime


def _webhook(row: Row[Any]) -> WebhookRow:
    return WebhookRow(**row._mapping)


def _delivery(row: Row[Any]) -> DeliveryRow:
    return DeliveryRow(**row._mapping)


def _webhooks() -> Select[Any]:
    pending = (select(func.count()).select_from(webhook_outbox)
               .where(webhook_outbox.c.webhook_id == webhooks.c.id)
               .scalar_subquery().label("pending"))
    return select(webhooks, pending)


# -- subscriptions -------------------------------------------------------------------------
def insert_webhook(
    conn: Connection, *, url: str, events: list[str], model: str | None, secret: str,
    status: str, at: datetime, by: str,
) -> WebhookRow:
    webhook_id = conn.execute(webhooks.insert().values(
        url=url, events=events, model=model, secret=secret, status=status, created_by=by,
        created_at=at).returning(webhooks.c.id)).scalar_one()
    found = find_webhook(conn, webhook_id)
    assert found is not None
    return found


def find_webhook(conn: Connection, webhook_id: int, *, deleted: bool = False
                 ) -> WebhookRow | None:
    query = _webhooks().where(webhooks.c.id == webhook_id)
    if not deleted:
        query = query.where(webhooks.c.deleted_at.is_(None))
    row = conn.execute(query).one_or_none()
    return _webhook(row) if row is not None else None


def list_webhooks(
    conn: Connection, *, cursor: Sequence[Any] | None = None, limit: int | None = None
) -> list[WebhookRow]:
    query = _webhooks().where(webhooks.c.deleted_at.is_(None))
    return [_webhook(row) for row in conn.execute(keyset(query, [webhooks.c.id], cursor, limit))]


def set_status(conn: Connection, webhook_id: int, status: str, reason: str, at: datetime
               ) -> None:
    conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(
        status=status, status_reason=reason, status_changed_at=at))


def mark_deleted(conn: Connection, webhook_id: int, at: datetime) -> None:
    """Delete softly, wipe the secret (nothing can sign for it again) and drop its queue."""
    conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(
        deleted_at=at, secret=""))
    conn.execute(delete(webhook_outbox).where(webhook_outbox.c.webhook_id == webhook_id))


def rename_model(conn: Connection, name: str, new_name: str) -> None:
    """Subscriptions of the model follow it to its new name, and its queued deliveries stay
    in one queue, so the events after the rename still wait for the ones before it."""
    conn.execute(update(webhooks).where(webhooks.c.model == name).values(model=new_name))
    conn.execute(update(webhook_outbox).where(webhook_outbox.c.queue == name)
                 .values(queue=new_name))


# -- the outbox ----------------------------------------------------------------------------
def _due(now: datetime) -> Select[Any]:
    """Outbox rows of active subscriptions that head their queue and are due now."""
    box, earlier = webhook_outbox.c, webhook_outbox.alias("earlier").c
    ahead = select(earlier.id).where(earlier.webhook_id == box.webhook_id,
                                     earlier.queue == box.queue, earlier.seq < box.seq)
    return (select(box.id, box.webhook_id, box.seq, box.attempt, box.failing_since,
                   webhooks.c.url, webhooks.c.secret)
            .join(webhooks, webhooks.c.id == box.webhook_id)
            .where(webhooks.c.status == "active", webhooks.c.deleted_at.is_(None),
                   or_(box.next_attempt_at.is_(None), box.next_attempt_at <= now),
                   or_(box.lease_until.is_(None), box.lease_until <= now),
                   ~ahead.exists()))


def any_due(conn: Connection, now: datetime) -> bool:
    """Whether any delivery is due now (a read: idle workers take no write lock)."""
    return conn.execute(_due(now).limit(1)).first() is not None


def claim(conn: Connection, now: datetime, lease_until: datetime) -> Claim | None:
    """Lease the oldest due row no other worker holds, numbering its next attempt."""
    query = (_due(now).order_by(webhook_outbox.c.seq, webhook_outbox.c.id).limit(1)
             .with_for_update(of=webhook_outbox, skip_locked=True))
    row = conn.execute(query).one_or_none()
    if row is None:
        return None
    attempt = int(row.attempt) + 1
    conn.execute(update(webhook_outbox).where(webhook_outbox.c.id == row.id)
                 .values(attempt=attempt, lease_until=lease_until))
    return Claim(id=row.id, webhook_id=row.webhook_id, seq=int(row.seq), attempt=attempt,
                 failing_since=row.failing_since, url=row.url, secret=row.secret)


def delivered(conn: Connection, outbox_id: int) -> None:
    """The receiver has the event: it leaves the outbox (the delivery log keeps it)."""
    conn.execute(delete(webhook_outbox).where(webhook_outbox.c.id == outbox_id))


def schedule_retry(conn: Connection, outbox_id: int, *, attempt: int,
                   failing_since: datetime, next_attempt_at: datetime | None) -> None:
    """Try again at ``next_attempt_at`` (None: when its subscription is enabled), unless
    another worker has claimed a later attempt meanwhile."""
    conn.execute(update(webhook_outbox)
                 .where(webhook_outbox.c.id == outbox_id, webhook_outbox.c.attempt == attempt)
                 .values(failing_since=failing_since, next_attempt_at=next_attempt_at,
                         lease_until=None))


def reset_retries(conn: Connection, webhook_id: int) -> None:
    """Make a subscription's queue due now, its failures forgotten (enabled again)."""
    conn.execute(update(webhook_outbox).where(webhook_outbox.c.webhook_id == webhook_id)
                 .values(failing_since=None, next_attempt_at=None, lease_until=None))


# -- the delivery log ----------------------------------------------------------------------
def insert_delivery(
    conn: Connection, *, webhook_id: int, event_id: str, event_type: str, seq: int | None,
    attempt: int, trigger: str, ok: bool, status_code: int | None, latency_ms: int,
    response: str, error: str, at: datetime,
) -> DeliveryRow:
    row = conn.execute(webhook_deliveries.insert().values(
        webhook_id=webhook_id, event_id=event_id, event_type=event_type, seq=seq,
        attempt=attempt, trigger=trigger, ok=ok, status_code=status_code,
        latency_ms=latency_ms, response=response, error=error, at=at,
    ).returning(*webhook_deliveries.c)).one()
    return _delivery(row)


def find_delivery(conn: Connection, delivery_id: int) -> DeliveryRow | None:
    row = conn.execute(select(webhook_deliveries)
                       .where(webhook_deliveries.c.id == delivery_id)).one_or_none()
    return _delivery(row) if row is not None else None


def list_deliveries(
    conn: Connection, webhook_id: int, *, cursor: Sequence[Any] | None = None,
    limit: int | None = None,
) -> list[DeliveryRow]:
    """A subscription's attempts, newest first."""
    query = select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
    return [_delivery(row) for row in conn.execute(
        keyset(query, [webhook_deliveries.c.id], cursor, limit, descending=True))]


def last_attempt(conn: Connection, webhook_id: int, event_id: str) -> int:
    """The highest attempt number logged for an event at a subscription (0: none)."""
    return int(conn.execute(
        select(func.coalesce(func.max(webhook_deliveries.c.attempt), 0))
        .where(webhook_deliveries.c.webhook_id == webhook_id,
               webhook_deliveries.c.event_id == event_id)).scalar_one())
