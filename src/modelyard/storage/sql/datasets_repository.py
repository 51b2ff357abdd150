"""Row-level queries for registered datasets (see ``datasets_schema``); nothing here commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.storage.sql.datasets_schema import dataset_versions, datasets
from modelyard.storage.sql.paging import keyset

DatasetRow = Row[Any]


def allocate_version(conn: Connection, name: str, actor: str, at: datetime) -> tuple[int, int]:
    """Create the dataset row if missing, bump its counter; returns (dataset_id, version)."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(datasets)
        .values(name=name, last_version=0, created_by=actor, created_at=at, updated_at=at)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    row = conn.execute(
        update(datasets)
        .where(datasets.c.name == name)
        .values(last_version=datasets.c.last_version + 1, updated_at=at)
        .returning(datasets.c.id, datasets.c.last_version)
    ).one()
    return int(row.id), int(row.last_version)


def insert_version(conn: Connection, **values: Any) -> None:
    conn.execute(dataset_versions.insert().values(**values))


def _versions() -> Any:
    return select(dataset_versions, datasets.c.name).join(
        datasets, datasets.c.id == dataset_versions.c.dataset_id
    )


def find_version(conn: Connection, name: str, version: int | None) -> DatasetRow | None:
    """One version of ``name``; the latest when ``version`` is None."""
    query = _versions().where(datasets.c.name == name)
    if version is not None:
        query = query.where(dataset_versions.c.version == version)
    return conn.execute(query.order_by(dataset_versions.c.version.desc()).limit(1)).one_or_none()


def dataset_exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(datasets.c.id).where(datasets.c.name == name)).first() is not None


def list_versions(
    conn: Connection, name: str | None = None, *, cursor: Sequence[Any] | None = None,
    limit: int | None = None,
) -> list[DatasetRow]:
    query = _versions()
    if name is not None:
        query = query.where(datasets.c.name == name)
    order = [datasets.c.name, dataset_versions.c.version]
    return list(conn.execute(keyset(query, order, cursor, limit)))


def latest_with_digest(conn: Connection, digest: str) -> DatasetRow | None:
    """The most recently registered version holding exactly this content, if any."""
    query = _versions().where(dataset_versions.c.digest == digest)
    return conn.execute(query.order_by(dataset_versions.c.id.desc()).limit(1)).one_or_none()

