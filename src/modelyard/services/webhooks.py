"""Webhook subscriptions: who hears of which events, and every attempt to tell them.

Admin only: a webhook makes the registry send requests to a URL and hands its receiver the
registry's events. Deliveries in order are the worker's (``webhook_delivery``); here are
the subscriptions, a ``ping`` to test one, the delivery log, and sending an earlier
delivery again. A subscription starts at the chain's head: it receives the events that
commit after it. Its secret is shown once, at creation, and kept sealed
(``SecretBox``); the audit log records a URL's origin only, since a path can be a
credential.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection

from modelyard.domain.names import MAX_ID, check_number
from modelyard.domain.paging import Page, check_max_results, collect, decode_token
from modelyard.domain.principal import Permission
from modelyard.domain.webhooks import (
    PING,
    Delivery,
    DeliveryTrigger,
    Webhook,
    WebhookStatus,
    check_events,
    check_secret,
    event_body,
    parse_url,
    ping_body,
)
from modelyard.errors import InvalidInput, InvalidTransition, NotFound
from modelyard.services.base import Context, UseCase
from modelyard.services.operations import operation
from modelyard.services.webhook_delivery import (
    SecretBox,
    Sender,
    WebhookSettings,
    check_destination,
    log_attempt,
    new_secret,
    to_delivery,
)
from modelyard.storage.sql import audit_log as audit
from modelyard.storage.sql import webhooks_repository as hooks

LIST_HINT = "see 'modelyard webhooks list'"


class Webhooks(UseCase):
    """Subscriptions to the registry's events, their tests and their delivery log."""

    def __init__(self, ctx: Context, settings: WebhookSettings | None = None) -> None:
        super().__init__(ctx)
        self._settings = settings

    @property
    def settings(self) -> WebhookSettings:
        """Read from the environment on first use: a registry that never touches webhooks
        never parses their settings."""
        if self._settings is None:
            self._settings = WebhookSettings.from_environment()
        return self._settings

    @operation(Permission.ADMIN)
    def create_webhook(
        self, url: str, events: str | Iterable[str], *, model: str | None = None,
        secret: str | None = None,
    ) -> tuple[Webhook, str]:
        """Subscribe a URL to event types (of one model, or all); the secret is shown once.

        The URL must be in the allow-list (MODELYARD_WEBHOOK_ALLOW) and its host resolve to
        allowed addresses only. Without ``secret`` a random one is made."""
        chosen = check_events(events)
        plain = check_secret(secret) if secret is not None else new_secret()
        self._check_reachable(url)
        sealed = SecretBox(self.settings.keys).seal(plain)
        who, now = self._actor(None), self.clock()
        with self.db.transaction() as conn:
            if model is not None:
                model = self._model(conn, model).name
            row = hooks.insert_webhook(conn, url=url, events=chosen, model=model,
                                       secret=sealed, status=WebhookStatus.ACTIVE.value,
                                       at=now, by=who.user)
            audit.record(conn, at=now, actor=who, action="webhook.create",
                         after={"webhook": row.id, "origin": parse_url(url).origin,
                                "events": chosen, "model": model})
        return _to_webhook(row), plain

    @operation(Permission.ADMIN, changes=False)
    def list_webhooks(
        self, *, max_results: int | None = None, page_token: str | None = None
    ) -> Page[Webhook]:
        """Every subscription (deleted ones left out), oldest first, with its status."""
        limit, cursor = check_max_results(max_results), decode_token(page_token, "webhooks", 1)
        with self.db.read() as conn:
            return collect(lambda after, n: [_to_webhook(r) for r in hooks.list_webhooks(
                conn, cursor=after, limit=n)], lambda w: (w.id,), limit, cursor,
                kind="webhooks")

    @operation(Permission.ADMIN)
    def disable_webhook(self, webhook_id: int, *, reason: str = "") -> Webhook:
        """Stop deliveries to a subscription; its events keep queueing, so enabling resumes
        where it stopped."""
        return self._set_status(webhook_id, WebhookStatus.DISABLED, reason or "disabled by "
                                f"{self.principal.user}", "webhook.disable")

    @operation(Permission.ADMIN)
    def enable_webhook(self, webhook_id: int) -> Webhook:
        """Resume a disabled or paused subscription from the event it stopped at."""
        with self.db.read() as conn:
            url = self._webhook(conn, webhook_id).url
        self._check_reachable(url)  # the allow-list may have changed since
        return self._set_status(webhook_id, WebhookStatus.ACTIVE, "", "webhook.enable")

    @operation(Permission.ADMIN)
    def delete_webhook(self, webhook_id: int) -> None:
        """Delete a subscription: no more deliveries, its secret wiped; its log is kept."""
        who, now = self._actor(None), self.clock()
        with self.db.transaction() as conn:
            row = self._webhook(conn, webhook_id)
            hooks.mark_deleted(conn, row.id, now)
            audit.record(conn, at=now, actor=who, action="webhook.delete",
                         after={"webhook": row.id, "origin": parse_url(row.url).origin})

    @operation(Permission.ADMIN)
    def test_webhook(self, webhook_id: int) -> Delivery:
        """Send a ``ping`` to a subscription now (whatever its status) and log the attempt."""
        now = self.clock()
        with self.db.read() as conn:
            row = self._webhook(conn, webhook_id)
        ping = f"ping_{secrets.token_hex(8)}"
        return self._send(row, ping_body(ping, row.id, now), ping, PING, None, 1,
                          DeliveryTrigger.TEST, now)

    @operation(Permission.ADMIN, changes=False)
    def list_deliveries(
        self, webhook_id: int, *, max_results: int | None = None,
        page_token: str | None = None,
    ) -> Page[Delivery]:
        """A subscription's delivery attempts, newest first (deleted subscriptions' too)."""
        limit, cursor = check_max_results(max_results), decode_token(page_token,
                                                                     "deliveries", 1)
        with self.db.read() as conn:
            found = self._webhook(conn, webhook_id, deleted=True)
            return collect(lambda after, n: [to_delivery(r) for r in hooks.list_deliveries(
                conn, found.id, cursor=after, limit=n)], lambda d: (d.id,), limit, cursor,
                kind="deliveries")

    @operation(Permission.ADMIN)
    def redeliver(self, delivery_id: int) -> Delivery:
        """Send an earlier delivery's event again now, with the same event id (receivers
        deduplicate on it); the queue is not touched."""
        number = check_number(delivery_id, "delivery id", high=MAX_ID,
                              hint="see 'modelyard webhooks deliveries ID'")
        now = self.clock()
        with self.db.read() as conn:
            earlier = hooks.find_delivery(conn, number)
            if earlier is None:
                raise NotFound(f"delivery {number} not found",
                               hint="see 'modelyard webhooks deliveries ID'")
            row = self._webhook(conn, earlier.webhook_id)
            attempt = hooks.last_attempt(conn, row.id, earlier.event_id) + 1
            if earlier.seq is None:
                body = ping_body(earlier.event_id, row.id, now)
            else:
                event = audit.event_at(conn, earlier.seq)
                assert event is not None  # the log is append-only
                body = event_body(event, self.settings.public_url)
        return self._send(row, body, earlier.event_id, earlier.event_type, earlier.seq,
                          attempt, DeliveryTrigger.REDELIVER, now)

    # -- helpers --------------------------------------------------------------------------
    def _check_reachable(self, url: str) -> None:
        """Refuse a URL the allow-list or the address rules forbid, or whose host does not
        resolve, before anything is stored."""
        try:
            check_destination(url, self.settings.allow)
        except OSError as exc:
            raise InvalidInput(f"cannot resolve the webhook's host: {exc}",
                               hint="check the URL, and that this server can resolve it"
                               ) from None

    def _send(self, row: hooks.WebhookRow, body: dict[str, object], event: str, kind: str,
              seq: int | None, attempt: int, trigger: DeliveryTrigger, now: datetime
              ) -> Delivery:
        """POST outside any transaction (an admin's call holds no lock while it waits),
        then log the attempt."""
        secret = SecretBox(self.settings.keys).open(row.secret)
        with Sender(self.settings) as sender:
            outcome = sender.send(row.url, secret, body, attempt=attempt)
        with self.db.transaction() as conn:
            return log_attempt(conn, row.id, event, kind, seq, attempt, trigger, outcome, now)

    def _set_status(self, webhook_id: int, status: WebhookStatus, reason: str, action: str
                    ) -> Webhook:
        who, now = self._actor(None), self.clock()
        with self.db.transaction() as conn:
            row = self._webhook(conn, webhook_id)
            if row.status == status.value:
                raise InvalidTransition(f"webhook {row.id} is already {status.value}")
            hooks.set_status(conn, row.id, status.value, reason, now)
            if status is WebhookStatus.ACTIVE:
                hooks.reset_retries(conn, row.id)
            audit.record(conn, at=now, actor=who, action=action,
                         before={"webhook": row.id, "status": row.status},
                         after={"webhook": row.id, "status": status.value, "reason": reason})
            found = hooks.find_webhook(conn, row.id)
            assert found is not None
        return _to_webhook(found)

    def _webhook(self, conn: Connection, webhook_id: int, *, deleted: bool = False
                 ) -> hooks.WebhookRow:
        number = check_number(webhook_id, "webhook id", high=MAX_ID, hint=LIST_HINT)
        row = hooks.find_webhook(conn, number, deleted=deleted)
        if row is None:
            raise NotFound(f"webhook {number} not found", hint=LIST_HINT, webhook=number)
        return row


def _to_webhook(row: hooks.WebhookRow) -> Webhook:
    return Webhook(id=row.id, url=row.url, events=list(row.events), model=row.model,
                   status=WebhookStatus(row.status), status_reason=row.status_reason,
                   created_by=row.created_by, created_at=row.created_at,
                   pending=row.pending, status_changed_at=row.status_changed_at)
