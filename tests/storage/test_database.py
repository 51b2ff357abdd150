"""Schema management: migrations, the revision check, unreachable databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.errors import InvalidInput, StorageUnavailable
from modelyard.storage.sql.database import SCHEMA_REVISION, Database, head_revision


def test_schema_revision_constant_matches_the_migration_scripts() -> None:
    assert head_revision() == SCHEMA_REVISION


def test_sqlite_is_migrated_automatically(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'nested' / 'r.db'}")
    assert db.current_revision() == SCHEMA_REVISION
    db.dispose()


@pytest.mark.postgres
def test_postgres_needs_an_explicit_upgrade(pg_databases: object, tmp_path: Path) -> None:
    url = pg_databases.empty()  # type: ignore[attr-defined]
    with pytest.raises(StorageUnavailable, match="modelyard db upgrade"):
        Database(url)
    result = CliRunner().invoke(app, ["--registry", url, "--home", str(tmp_path), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert SCHEMA_REVISION in result.stdout
    db = Database(url)
    assert db.current_revision() == SCHEMA_REVISION
    db.dispose()


def test_unreachable_and_malformed_urls_are_clear_errors() -> None:
    with pytest.raises(StorageUnavailable, match="cannot connect"):
        Database("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(InvalidInput, match="unsupported registry database"):
        Database("mysql://localhost/x")
    with pytest.raises(InvalidInput, match="invalid registry URL"):
        Database("not a url")


def test_database_errors_mid_transaction_become_modelyard_errors(registry_url: str) -> None:
    """No SQLAlchemy exception reaches a caller: a constraint is a conflict, a lost
    connection is the database being unavailable, and nothing half-done is committed."""
    from sqlalchemy import text

    from modelyard.errors import AlreadyExists

    db = Database(registry_url, auto_upgrade=True)
    insert = text("INSERT INTO models (name, description, tags, created_by, created_at, "
                  "updated_at, last_version) VALUES ('m', '', '{}', 'a', :t, :t, 0)")
    now = {"t": "2026-12-01 00:00:00"}
    with db.transaction() as conn:
        conn.execute(insert, now)
    with pytest.raises(AlreadyExists, match="conflicts"), db.transaction() as conn:
        conn.execute(insert, now)
    with pytest.raises(StorageUnavailable, match="nothing was committed"), \
            db.transaction() as conn:
        conn.execute(text("UPDATE models SET description = 'half' WHERE name = 'm'"))
        if db.dialect == "postgresql":
            conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        else:
            conn.execute(text("SELECT * FROM no_such_table"))
    with db.read() as conn:
        assert conn.execute(text("SELECT description FROM models")).scalar_one() == ""
    db.dispose()


def test_audit_events_need_a_registry_transaction(registry_url: str) -> None:
    """Events are chained at commit by Database.transaction: a bare engine transaction
    would commit without them, so recording there is refused instead of lost."""
    from datetime import UTC, datetime

    from modelyard.storage.sql import audit_log

    db = Database(registry_url, auto_upgrade=True)
    with pytest.raises(RuntimeError, match=r"Database\.transaction"), db.engine.begin() as conn:
        audit_log.record(conn, at=datetime.now(UTC), actor="a", action="test")
    with db.transaction() as conn:
        for n in range(3):
            audit_log.record(conn, at=datetime.now(UTC), actor="a", action=f"test.{n}")
    with db.read() as conn:
        assert [e.seq for e in audit_log.list_events(conn)] == [1, 2, 3]
        assert audit_log.verify_chain(conn)[1] is None
    db.dispose()


def test_sqlite_reads_take_no_write_lock_and_writes_take_it_at_begin(tmp_path: Path) -> None:
    """A read's transaction is DEFERRED (it runs beside a writer); a write's is IMMEDIATE
    (it holds the lock from its first statement, so writers queue instead of failing)."""
    import sqlite3

    from sqlalchemy import text

    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    other = Database(f"sqlite:///{tmp_path / 'r.db'}")
    probe = sqlite3.connect(tmp_path / "r.db", timeout=0, isolation_level=None)
    try:
        with db.transaction():  # no statement yet, and the lock is taken
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                probe.execute("BEGIN IMMEDIATE")
            with other.read() as reading:  # not blocked by the writer
                assert reading.execute(text("SELECT 1")).scalar() == 1
        with db.read() as reading:
            reading.execute(text("SELECT 1"))
            with other.transaction() as writing:  # a reader does not block a writer
                writing.execute(text("SELECT 1"))
        with db.read():  # no statement: nothing is locked
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
    finally:
        probe.close()
        db.dispose()
        other.dispose()


def test_sqlite_writers_queue_across_databases_threads_and_processes(tmp_path: Path) -> None:
    """Write transactions of one SQLite file wait their turn on ``<file>.write-lock``: a
    thread or another process waits while one is open and starts once it ends; a write
    opened inside another in the same thread (any Database of the file) is not held up by
    the queue."""
    import subprocess
    import sys
    import threading
    import time

    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'r.db'}"
    db, other = Database(url), Database(url)
    started: list[float] = []

    def write() -> None:
        with other.transaction() as conn:
            started.append(time.monotonic())
            conn.execute(text("SELECT 1"))

    script = ("import sys, time\n"
              "from modelyard.storage.sql.database import Database\n"
              "db = Database(sys.argv[1])\n"
              "with db.transaction():\n"
              "    print(time.time(), flush=True)\n")
    try:
        with db.transaction():
            with other._write_turn():  # re-entrant within this thread
                pass
            thread = threading.Thread(target=write)
            thread.start()
            child = subprocess.Popen([sys.executable, "-c", script, url],
                                     stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)
            assert started == [] and child.poll() is None  # both wait their turn
            released = time.monotonic()
            wall_released = time.time()
        thread.join(timeout=30)
        out, _ = child.communicate(timeout=30)
        assert started and started[0] >= released
        assert float(out) >= wall_released - 0.05
        assert (tmp_path / "r.db.write-lock").exists()
    finally:
        db.dispose()
        other.dispose()
