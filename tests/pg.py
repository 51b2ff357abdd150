"""PostgreSQL for tests: one migrated template per run, a clean database per test.

``CREATE DATABASE … TEMPLATE`` copies the migrated schema; a database a test has finished
with is recycled by truncating its tables (much cheaper than creating and dropping one
per test, which dominated the run). Everything is dropped at the end of the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg

from modelyard.storage.sql.audit_log import GENESIS_HASH

ADMIN_URL = os.environ.get("MODELYARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def _url(database: str) -> str:
    base = ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{database}"


def available() -> bool:
    try:
        with _admin():
            return True
    except psycopg.OperationalError:
        return False


class PgDatabases:
    def __init__(self) -> None:
        self.prefix = f"myt_{uuid.uuid4().hex[:8]}"
        self.template = f"{self.prefix}_tmpl"
        self.created: list[str] = []
        self.idle: list[str] = []

    def make_template(self) -> None:
        from modelyard.storage.sql.database import Database

        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.template}"')
        self.created.append(self.template)
        db = Database(_url(self.template), auto_upgrade=True)
        db.dispose()

    def fresh(self) -> str:
        """A migrated database with no rows but the audit chain's genesis."""
        while self.idle:
            name = self.idle.pop()
            if _reset(name):
                return _url(name)
        name = f"{self.prefix}_{uuid.uuid4().hex[:8]}"
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.created.append(name)
        return _url(name)

    def empty(self) -> str:
        name = f"{self.prefix}_{uuid.uuid4().hex[:8]}"
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return _url(name)

    def release(self, url: str) -> None:
        """The test is done with ``url``: recycle it for the next ``fresh()``."""
        name = url.rsplit("/", 1)[1]
        if name in self.created and name != self.template:
            self.idle.append(name)

    def drop_all(self) -> None:
        with _admin() as conn:
            for name in reversed(self.created):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reset(name: str) -> bool:
    """Empty every table of a used database; False if something still holds it."""
    try:
        with psycopg.connect(_url(name), autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '2s'")
            tables = [r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'")]
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            conn.execute("INSERT INTO registry_state (id, event_count, last_event_hash) "
                         "VALUES (1, 0, %s)", (GENESIS_HASH,))
    except psycopg.Error:
        return False
    return True


def databases() -> Iterator[PgDatabases]:
    dbs = PgDatabases()
    dbs.make_template()
    try:
        yield dbs
    finally:
        dbs.drop_all()
