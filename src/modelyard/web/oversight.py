"""The audit log, filtered, and the verification of its chain."""

from __future__ import annotations

from fastapi import Request, Response

from modelyard.domain.entities import AuditEvent
from modelyard.domain.times import parse_time
from modelyard.web.views import PAGE_SIZE, SignedIn, page_router, render

routes = page_router()
MAX_SCAN = 5_000  # events read for one filtered page; the page says when it stopped early


def matches(event: AuditEvent, actor: str, action: str) -> bool:
    """``actor`` is the acting user (or the admin acting for them); ``action`` an action
    or its family (``request`` matches ``request.approve``)."""
    return ((not actor or actor in (event.actor, event.via))
            and (not action or event.action == action or event.action.startswith(action + ".")))


@routes.get("/audit")
def audit_page(request: Request, v: SignedIn, model: str = "", actor: str = "", action: str = "",
               since: str = "", until: str = "", page_token: str | None = None
               ) -> Response:
    """Audit events, oldest first, by model and time (the registry's filters: ``since``
    inclusive, ``until`` exclusive) and by actor and action (read through the pages the
    registry returns)."""
    start = parse_time(since) if since else None
    end = parse_time(until) if until else None
    events: list[AuditEvent] = []
    token, scanned = page_token, 0
    while True:
        batch = v.registry.audit(model or None, since=start, until=end,
                                 max_results=PAGE_SIZE, page_token=token)
        events += [e for e in batch if matches(e, actor.strip(), action.strip())]
        scanned += len(batch)
        token = batch.next_page_token
        if token is None or len(events) >= PAGE_SIZE or scanned >= MAX_SCAN:
            break
    return render(request, "audit.html", events=events, next_token=token, model=model,
                  actor=actor, action=action, since=since, until=until,
                  cut_short=token is not None and len(events) < PAGE_SIZE)


@routes.get("/audit/verify")
def verify_page(request: Request, v: SignedIn) -> Response:
    """Recompute the hash chain and replay the log against the tables."""
    return render(request, "verify.html", report=v.registry.verify_audit())


RECENT_DELIVERIES = 10  # attempts shown per subscription; the CLI and REST page through all


@routes.get("/webhooks")
def webhooks_page(request: Request, v: SignedIn) -> Response:
    """Subscriptions with their status, and each one's latest delivery attempts (admins)."""
    hooks = v.registry.list_webhooks()
    recent = {h.id: v.registry.list_deliveries(h.id, max_results=RECENT_DELIVERIES)
              for h in hooks}
    return render(request, "webhooks.html", hooks=hooks, recent=recent)
