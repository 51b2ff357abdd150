"""Keyset pagination in SQL: order by a key and start strictly after the last key seen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, literal, tuple_


def keyset(
    query: Select[Any], order: Sequence[ColumnElement[Any]], cursor: Sequence[Any] | None,
    limit: int | None, *, descending: bool = False,
) -> Select[Any]:
    """``query`` ordered by ``order`` (all ascending or all descending), after ``cursor``.

    Row-value comparison ``(a, b) > (x, y)`` is what both SQLite and PostgreSQL index well.
    """
    if cursor is not None:
        key = tuple_(*order)
        after = tuple_(*(literal(value, column.type) for value, column in zip(
            cursor, order, strict=True)))
        query = query.where(key < after if descending else key > after)
    query = query.order_by(*(column.desc() if descending else column for column in order))
    return query.limit(limit) if limit is not None else query
