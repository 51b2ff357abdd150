"""Small local indexes in one SQLite file (WAL), shared by processes: open it, write batches.

The workspace's ``state.db`` (digests by stat, folder fingerprints, what remotes hold) and
the registry's hash cache all use these two helpers.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from typing import Any

from modelyard.errors import StorageUnavailable


def connect(db_path: str, schema: str, *, threads: bool = False) -> sqlite3.Connection:
    """Open ``db_path`` in autocommit mode and create ``schema``'s table if missing.

    A cache can be rebuilt, so commits need not survive a power loss (``synchronous=NORMAL``).
    With ``threads`` the connection may be shared by threads that serialise on their own lock.
    """
    try:
        os.makedirs(os.path.dirname(os.path.abspath(db_path)), exist_ok=True)
        db = sqlite3.connect(db_path, timeout=30, isolation_level=None,
                             check_same_thread=not threads)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(schema)
    except (OSError, sqlite3.Error) as exc:
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
