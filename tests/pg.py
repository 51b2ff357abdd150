"""PostgreSQL for tests: one migrated template per run, one fresh database per test.

``CREATE DATABASE … TEMPLATE`` copies the migrated schema in tens of milliseconds, so
every test gets a clean, real database; everything is dropped at the end of the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg

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

    def make_template(self) -> None:
        from modelyard.storage.database import Database

        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.template}"')
        self.created.append(self.template)
        db = Database(_url(self.template), auto_upgrade=True)
        db.dispose()

    def fresh(self) -> str:
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

    def drop_all(self) -> None:
        with _admin() as conn:
            for name in reversed(self.created):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def databases() -> Iterator[PgDatabases]:
    dbs = PgDatabases()
    dbs.make_template()
    try:
        yield dbs
    finally:
        dbs.drop_all()
