"""The metadata database: engines, transactions and schema migrations.

SQLite and PostgreSQL run the same queries. Two engine-specific habits live here and only
here: SQLite write transactions start with ``BEGIN IMMEDIATE`` (so concurrent writers
queue on the lock instead of failing on upgrade), and ``postgresql://`` URLs are routed to
psycopg 3.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, create_engine, event, make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from modelyard.errors import AlreadyExists, InvalidInput, StorageUnavailable
from modelyard.storage.sql import json_values

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
# The newest migration. Checked against the migration scripts by a test; kept as a constant
# so that opening a registry never imports Alembic (half a second of every CLI call).
SCHEMA_REVISION = "0011"


def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The head according to the migration scripts themselves (slow: imports Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and route them to psycopg 3."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


_BEFORE_COMMIT = "modelyard.before_commit"


def before_commit(conn: Connection, hook: Callable[[Connection], None]) -> None:
    """Run ``hook(conn)`` once, just before the current write transaction commits."""
    hooks = conn.info.get(_BEFORE_COMMIT)
    if hooks is None:  # a bare engine.begin() would commit without running the hook
        raise RuntimeError("before_commit needs a Database.transaction() connection")
    hooks.append(hook)


def _forget_transaction_state(conn: Connection) -> None:
    """``conn.info`` belongs to the pooled DBAPI connection and outlives transactions."""
    for key in [k for k in conn.info if str(k).startswith("modelyard.")]:
        del conn.info[key]


class Database:
    """One metadata database; ``transaction()`` is the unit of every change."""

    def __init__(self, url: str, *, auto_upgrade: bool | None = None) -> None:
        self.url = normalize_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError:
            raise InvalidInput(
                f"invalid registry URL {url!r}: expected sqlite:///PATH or postgresql://…"
            ) from None
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise InvalidInput(f"unsupported registry database {self.dialect!r}: "
                               "use sqlite:///PATH or postgresql://…")
        self.engine = self._create_engine(parsed.database or "")
        self._write_lock = (os.path.abspath(parsed.database) + ".write-lock"
                            if self.dialect == "sqlite" and parsed.database
                            and parsed.database != ":memory:" else None)
        if auto_upgrade is None:
            auto_upgrade = self.dialect == "sqlite"
        self._ensure_schema(auto_upgrade)

    def _create_engine(self, database: str) -> Engine:
        if self.dialect == "sqlite":
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(self.url, connect_args={"timeout": 120})
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        return create_engine(self.url, pool_pre_ping=True, connect_args={"connect_timeout": 10},
                             json_serializer=json_values.dumps,
                             json_deserializer=json_values.loads)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception.

        Hooks added with ``before_commit`` run, in order, after the body and inside the
        transaction (the audit chain appends there)."""
        with self._translated(), self._write_turn(), self._connect(write=True) as conn:
            try:
                with conn.begin():
                    _forget_transaction_state(conn)
                    conn.info[_BEFORE_COMMIT] = []
                    yield conn
                    for hook in conn.info.pop(_BEFORE_COMMIT, []):
                        hook(conn)
            finally:
                _forget_transaction_state(conn)

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        """On SQLite, wait for this file's write turn (see ``_Writers``); elsewhere the
        database queues writers itself."""
        if self._write_lock is None:
            yield
            return
        with _writers_of(self._write_lock).turn():
            yield

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only snapshot (one transaction, so related reads agree)."""
        with self._translated(), self._connect(write=False) as conn, conn.begin():
            yield conn

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """Database failures become ``modelyard.errors``: no SQLAlchemy exception reaches a
        user. A constraint the code did not foresee is a conflict, never a 500; a dropped
        connection or a lock time-out is the database being unavailable (retry later)."""
        try:
            yield
        except SAIntegrityError as exc:
            raise AlreadyExists(
                f"the change conflicts with what the registry already holds: "
                f"{_first_line(exc.orig or exc)}",
                hint="read the current state and try again") from exc
        except (OperationalError, InterfaceError) as exc:
            raise StorageUnavailable(
                f"the registry database {redact(self.url)} failed mid-transaction: "
                f"{_first_line(exc.orig or exc)}",
                hint="nothing was committed; check the database and try again") from exc
        except DataError as exc:
            raise InvalidInput(f"the database refused a value: {_first_line(exc.orig or exc)}"
                               ) from exc

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            raise StorageUnavailable(
                f"cannot connect to the registry database {redact(self.url)}: "
                f"{_first_line(exc.orig or exc)}"
            ) from None
        with conn:
            if write and self.dialect == "sqlite":  # a read's BEGIN is DEFERRED by default
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            yield conn

    # -- schema -------------------------------------------------------------------------
    def current_revision(self) -> str | None:
        with self._connect(write=False) as conn:
            try:
                with conn.begin():
                    rows = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            except (OperationalError, ProgrammingError):  # no table yet: an empty database
                return None
        return str(rows[0][0]) if len(rows) == 1 else None

    def upgrade(self) -> None:
        """Apply pending Alembic migrations; safe to run from several processes at once."""
        from alembic import command

        with self._migration_lock(), self._connect(write=True) as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_lock(727001)")
            try:
                command.upgrade(_alembic_config(conn), "head")
                conn.commit()
            finally:
                if self.dialect == "postgresql":
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(727001)")
                    conn.commit()

    def _ensure_schema(self, auto_upgrade: bool) -> None:
        current = self.current_revision()
        if current == SCHEMA_REVISION:
            return
        if auto_upgrade:
            self.upgrade()
            return
        raise StorageUnavailable(
            f"the registry database {redact(self.url)} is at schema "
            f"{current or 'none'}, this Modelyard needs {SCHEMA_REVISION}",
            hint="run 'modelyard db upgrade' with the same --registry",
        )

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        database = make_url(self.url).database
        if self.dialect != "sqlite" or not database or database == ":memory:":
            yield
            return
        with open(database + ".migrate-lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def dispose(self) -> None:
        self.engine.dispose()


class _Writers:
    """The queue of one SQLite file's write transactions, across threads and processes.

    SQLite lets one writer in at a time, and one that finds the lock taken sleeps in its
    busy handler (1, 2, 5, 10 ... up to 100 ms a nap) rather than waking when it is freed.
    Waiting here instead, on a thread lock and then an ``flock`` of
    ``<database>.write-lock`` (which the kernel hands to the next waiter on release), the
    next writer starts as soon as the previous one committed (16 writers through a
    two-worker server: about 170 -> 220 versions/s). Re-entrant within a thread, so a
    write opened inside another (by any ``Database`` of the file) behaves as without the
    queue; one per file and process. Without a lock file (a folder this process cannot
    create files in) writers queue on SQLite's lock alone, as they used to.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.depth = 0
        self.fd = -1

    @contextmanager
    def turn(self) -> Iterator[None]:
        with self.lock:
            if self.depth == 0 and self._open():
                fcntl.flock(self.fd, fcntl.LOCK_EX)
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
                if self.depth == 0 and self.fd >= 0:
                    fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _open(self) -> bool:
        if self.fd < 0:
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            except OSError:
                return False
        return True


_WRITERS: dict[tuple[int, str], _Writers] = {}
_WRITERS_LOCK = threading.Lock()


def _writers_of(path: str) -> _Writers:
    """The queue on the lock file ``path`` in this process: looked up per transaction, so
    a forked child makes its own (an inherited descriptor would share the parent's lock)."""
    key = (os.getpid(), path)
    found = _WRITERS.get(key)
    if found is None:
        with _WRITERS_LOCK:
            found = _WRITERS.setdefault(key, _Writers(path))
    return found


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: in WAL mode every commit syncs the WAL, so a committed version survives a
    # power loss (NORMAL loses the WAL tail and then reuses its version numbers). EXTRA
    # would add nothing here: its extra directory sync is for DELETE-mode journals.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=120000")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """A read's ``BEGIN DEFERRED`` takes no lock and cannot fail, so it goes straight to the
    driver (a third of an empty read transaction's cost through SQLAlchemy); a write's
    ``BEGIN IMMEDIATE`` may time out on the lock and stays where its error is translated."""
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode == "DEFERRED":
        conn.connection.driver_connection.execute("BEGIN DEFERRED")  # type: ignore[union-attr]
    else:
        conn.exec_driver_sql(f"BEGIN {mode}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
