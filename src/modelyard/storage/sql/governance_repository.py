"""Row-level queries for policies, promotion requests and decisions.

Like ``repository``: no commits, no rules, no audit events; the governance service composes
these in its transactions. ``close_request`` is a compare-and-set on ``status = 'pending'`` so
a request can leave ``pending`` once, whatever races the caller's locks might have missed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update

from modelyard.storage.sql.governance_schema import (
    model_policies,
    promotion_requests,
    request_decisions,
)
from modelyard.storage.sql.paging import keyset
from modelyard.storage.sql.schema import models

PENDING = "pending"


def find_policy(
    conn: Connection, model_id: int, policy_version: int | None = None
) -> Row[Any] | None:
    """One policy version of a model, or its latest when ``policy_version`` is None."""
    query = select(model_policies).where(model_policies.c.model_id == model_id)
    if policy_version is not None:
        query = query.where(model_policies.c.policy_version == policy_version)
    query = query.order_by(model_policies.c.policy_version.desc()).limit(1)
    return conn.execute(query).one_or_none()


def insert_policy(conn: Connection, **values: Any) -> None:
    conn.execute(model_policies.insert().values(**values))


def insert_request(conn: Connection, **values: Any) -> int:
    result = conn.execute(
        promotion_requests.insert().values(**values).returning(promotion_requests.c.id)
    )
    return int(result.scalar_one())


def _requests() -> Any:
    return select(promotion_requests, models.c.name).join(
        models, models.c.id == promotion_requests.c.model_id
    )


def find_request(conn: Connection, request_id: int) -> Row[Any] | None:
    return conn.execute(_requests().where(promotion_requests.c.id == request_id)).one_or_none()


def pending_request_for(conn: Connection, version_id: int) -> Row[Any] | None:
    query = _requests().where(promotion_requests.c.version_id == version_id,
                              promotion_requests.c.status == PENDING)
    return conn.execute(query).first()


def list_requests(
    conn: Connection, *, model_id: int | None = None, version_id: int | None = None,
    status: str | None = None, cursor: Sequence[Any] | None = None, limit: int | None = None,
) -> list[Row[Any]]:
    query = _requests()
    if model_id is not None:
        query = query.where(promotion_requests.c.model_id == model_id)
    if version_id is not None:
        query = query.where(promotion_requests.c.version_id == version_id)
    if status is not None:
        query = query.where(promotion_requests.c.status == status)
    return list(conn.execute(keyset(query, [promotion_requests.c.id], cursor, limit)))


def close_request(
    conn: Connection, request_id: int, *, status: str, actor: str, at: datetime, reason: str
) -> bool:
    """Move a pending request to its final status; False if it was no longer pending."""
    result = conn.execute(
        update(promotion_requests)
        .where(promotion_requests.c.id == request_id, promotion_requests.c.status == PENDING)
        .values(status=status, closed_by=actor, closed_at=at, close_reason=reason)
    )
    return result.rowcount == 1


def insert_decision(conn: Connection, **values: Any) -> None:
    conn.execute(request_decisions.insert().values(**values))


def count_decisions(conn: Connection, request_id: int, decision: str) -> int:
    query = select(func.count()).where(request_decisions.c.request_id == request_id,
                                       request_decisions.c.decision == decision)
    return int(conn.execute(query).scalar_one())


def has_decided(conn: Connection, request_id: int, actor: str) -> bool:
    query = select(request_decisions.c.id).where(request_decisions.c.request_id == request_id,
                                                 request_decisions.c.actor == actor)
    return conn.execute(query).first() is not None


def decisions_by_request(
    conn: Connection, request_ids: Iterable[int]
) -> dict[int, list[Row[Any]]]:
    ids = list(request_ids)
    found: dict[int, list[Row[Any]]] = defaultdict(list)
    if not ids:
        return found
    rows = conn.execute(
        select(request_decisions)
        .where(request_decisions.c.request_id.in_(ids))
        .order_by(request_decisions.c.id)
    )
    for row in rows:
        found[int(row.request_id)].append(row)
    return found
