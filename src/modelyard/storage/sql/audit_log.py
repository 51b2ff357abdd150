"""The append-only, hash-chained audit log.

Every change calls ``record`` inside its own transaction; the events are chained just
before that transaction commits, by one bump of the single ``registry_state`` row, which
numbers them and serialises appends on that row's lock, so the chain has no forks even with
many processes, and its order is commit order. The same step queues the events' webhook
deliveries (``outbox``), so they commit or roll back with the events. There is deliberately no
update or delete path for events; ``verify_chain`` recomputes every hash.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, or_, select, update

from modelyard.domain.entities import AuditEvent
from modelyard.domain.principal import Actor
from modelyard.storage.content.hashing import hash_bytes
from modelyard.storage.sql import outbox
from modelyard.storage.sql.database import before_commit
from modelyard.storage.sql.paging import keyset
from modelyard.storage.sql.schema import audit_events, registry_state

Clock = Callable[[], datetime]
GENESIS_HASH = "blake3:" + "0" * 64  # also written by migration 0001


def event_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    model: str | None,
    version: int | None,
    before: Any,
    after: Any,
    comment: str,
    prev_hash: str,
    via: str | None = None,
) -> str:
    """BLAKE3 of the canonical JSON of an event's content and its predecessor's hash.

    ``via`` joins the payload only when set, so events written before it existed keep
    their hashes.
    """
    payload = {
        "seq": seq,
        "at": at.isoformat(),
        "actor": actor,
        "action": action,
        "model": model,
        "version": version,
        "before": before,
        "after": after,
        "comment": comment,
        "prev_hash": prev_hash,
        **({"via": via} if via is not None else {}),
    }
    return hash_bytes(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())


def record(
    conn: Connection,
    *,
    at: datetime,
    actor: Actor | str,
    action: str,
    model: str | None = None,
    version: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    comment: str = "",
) -> None:
    """Add one event to the caller's transaction; it joins the chain when that commits.

    ``actor`` is the principal's ``Actor`` (with ``via`` when an admin acts for someone), or
    a plain name for what the registry itself decides (``modelyard``). Events wait in the
    transaction and are chained just before its commit (``Database.transaction`` runs the
    hook), so the chain's row lock is held for the append and the commit only, not for the
    whole change: writers of different models overlap everything else.
    """
    who = actor if isinstance(actor, Actor) else Actor(actor)
    pending: list[dict[str, Any]] | None = conn.info.get(_PENDING)
    if pending is None:
        before_commit(conn, _append_pending)
        pending = conn.info[_PENDING] = []
    pending.append(dict(at=at, actor=who.user, action=action, model=model, version=version,
                        before=before, after=after, comment=comment or "", via=who.via))


_PENDING = "modelyard.audit.pending"
# Every change runs these three, so they are built once (SQLAlchemy builds a statement and
# its cache key in about as long as SQLite takes to run it).
_BUMP = (update(registry_state).where(registry_state.c.id == 1)
         .values(event_count=registry_state.c.event_count + bindparam("added"))
         .returning(registry_state.c.event_count, registry_state.c.last_event_hash))
_INSERT = audit_events.insert()
_SET_HEAD = (update(registry_state).where(registry_state.c.id == 1)
             .values(last_event_hash=bindparam("head")))


def _append_pending(conn: Connection) -> None:
    """Chain this transaction's events: one bump of the head row numbers them all."""
    pending: list[dict[str, Any]] = conn.info.pop(_PENDING, [])
    if not pending:
        return
    head = conn.execute(_BUMP, {"added": len(pending)}).one()
    seq, prev_hash = int(head.event_count) - len(pending), str(head.last_event_hash)
    rows = []
    for fields in pending:
        seq += 1
        digest = event_hash(seq=seq, prev_hash=prev_hash, **fields)
        rows.append({**fields, "seq": seq, "prev_hash": prev_hash, "hash": digest})
        prev_hash = digest
    conn.execute(_INSERT, rows)
    conn.execute(_SET_HEAD, {"head": prev_hash})
    outbox.enqueue(conn, rows)  # webhook deliveries commit (or roll back) with the events


def to_event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        seq=int(row.seq), at=row.at, actor=row.actor, action=row.action, model=row.model,
        version=row.version, before=row.before, after=row.after, comment=row.comment,
        prev_hash=row.prev_hash, hash=row.hash, via=row.via,
    )


NAMING_ACTIONS = ("model.create", "model.rename")  # the events that give a model a name
_NAMED = (select(audit_events.c.seq, audit_events.c.action, audit_events.c.before)
          .where(audit_events.c.model == bindparam("name"),
                 audit_events.c.action == bindparam("action"),
                 audit_events.c.seq < bindparam("end"))
          .order_by(audit_events.c.seq.desc()).limit(1))
_AFTER_ALL = 2**62  # above every seq: the current name's span has no end


def model_spans(conn: Connection, name: str) -> list[tuple[str, int, int | None]]:
    """The names the model now called ``name`` had, newest first, each with the events it
    held it for: (name, first seq, seq it was renamed away at or None).

    Events keep the name they were recorded under (the chain hashes it), so a renamed
    model's history is found through the chain itself: a name starts at the model's
    ``model.create`` or at the ``model.rename`` into it (recorded under the new name, the
    old in ``before``), the latest such event before the next name began. A name another
    model held earlier and gave up is therefore never mixed in.
    """
    spans: list[tuple[str, int, int | None]] = []
    end: int | None = None
    while True:
        starts = [row for action in NAMING_ACTIONS if (row := conn.execute(
            _NAMED, {"name": name, "action": action,
                     "end": _AFTER_ALL if end is None else end}).first()) is not None]
        if not starts:  # no naming event: every event under the name is the model's
            spans.append((name, 0, end))
            return spans
        start = max(starts, key=lambda row: int(row.seq))
        spans.append((name, int(start.seq), end))
        if start.action != "model.rename":
            return spans
        name, end = str((start.before or {})["name"]), int(start.seq)


def list_events(
    conn: Connection, *, model: str | None = None, since: datetime | None = None,
    until: datetime | None = None, cursor: Sequence[Any] | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events in chain order, optionally of one model (the model now called ``model``,
    under every name it had: ``model_spans``) and in a time window (``since`` inclusive,
    ``until`` exclusive), after ``cursor``."""
    query = select(audit_events)
    if model is not None:
        seq = audit_events.c.seq
        query = query.where(or_(*(
            and_(audit_events.c.model == named, seq >= start,
                 *([seq < end] if end is not None else []))
            for named, start, end in model_spans(conn, model))))
    if since is not None:
        query = query.where(audit_events.c.at >= since)
    if until is not None:
        query = query.where(audit_events.c.at < until)
    return [to_event(row) for row in conn.execute(
        keyset(query, [audit_events.c.seq], cursor, limit))]


def verify_chain(
    conn: Connection, events: Iterable[AuditEvent] | None = None
) -> tuple[int, AuditEvent | None, str]:
    """Recompute the chain (``events``: all of them, oldest first, if already read); return
    (events checked, first bad event or None, reason)."""
    head = conn.execute(select(registry_state).where(registry_state.c.id == 1)).one()
    prev = None
    checked = 0
    if events is None:
        events = (to_event(row) for row in conn.execute(
            select(audit_events).order_by(audit_events.c.seq)))
    for event in events:
        checked += 1
        expected_prev = prev.hash if prev else GENESIS_HASH
        if event.seq != (prev.seq + 1 if prev else 1):
            return checked, event, f"sequence gap before event {event.seq}"
        if event.prev_hash != expected_prev:
            return checked, event, f"event {event.seq} does not point at event {event.seq - 1}"
        fields = {k: v for k, v in event.to_dict().items() if k != "hash"}
        fields["at"] = event.at
        if event_hash(**fields) != event.hash:
            return checked, event, f"event {event.seq} was altered (its hash does not match)"
        prev = event
    last_seq, last_hash = (prev.seq, prev.hash) if prev else (0, GENESIS_HASH)
    if head.event_count != last_seq or head.last_event_hash != last_hash:
        return checked, prev, f"events after event {last_seq} were removed"
    return checked, None, ""


def snapshot(conn: Connection) -> None:
    """Make the rest of this read transaction one snapshot (PostgreSQL reads each statement
    afresh by default; SQLite's deferred read transaction already is one), so a write
    committed between reading the head, the events and the tables never looks like tampering.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def head(conn: Connection) -> tuple[int, str]:
    """The chain head as ``registry_state`` records it: (event count, last event's hash)."""
    row = conn.execute(select(registry_state).where(registry_state.c.id == 1)).one()
    return int(row.event_count), str(row.last_event_hash)


def event_at(conn: Connection, seq: int) -> AuditEvent | None:
    row = conn.execute(select(audit_events).where(audit_events.c.seq == seq)).first()
    return to_event(row) if row is not None else None


def last_event(conn: Connection) -> AuditEvent | None:
    row = conn.execute(select(audit_events).order_by(audit_events.c.seq.desc()).limit(1)).first()
    return to_event(row) if row is not None else None
