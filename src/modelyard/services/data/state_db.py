"""The workspace's ``state.db``: one SQLite file (WAL) shared by the small local indexes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from modelyard.errors import StorageUnavailable


def connect(db_path: str, schema: str) -> sqlite3.Connection:
    """Open ``db_path`` in autocommit mode and create ``schema``'s table if missing."""
    try:
        db = sqlite3.connect(db_path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(schema)
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"cannot open {db_path}: {exc}") from exc
    return db


def write_many(db: sqlite3.Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run ``sql`` for every row in one transaction (one lock, one sync)."""
    if not rows:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(sql, rows)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
