"""Row-level queries over the metadata schema, one function per question.

Services compose these inside a transaction; nothing here commits, decides policy or
writes audit events. Version numbers come from the per-model counter row, bumped with
``UPDATE … RETURNING`` in the caller's transaction, so concurrent writers (threads or
processes, SQLite or PostgreSQL) queue on that row and never collide or retry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.storage.sql import json_values
from modelyard.storage.sql.datasets_schema import dataset_versions, datasets
from modelyard.storage.sql.filters import Condition, value_rows
from modelyard.storage.sql.paging import keyset
from modelyard.storage.sql.schema import (
    aliases,
    model_versions,
    models,
    version_values,
)
from modelyard.storage.sql.tracking_schema import run_artifacts

ModelRow = Row[Any]
VersionRow = Row[Any]

# The lookups every call makes are built once, with bound parameters: building a select
# and its cache key costs SQLAlchemy about 0.1 ms a statement, more than SQLite takes to
# answer one (a get_version makes three).
_MODEL_ANY = select(models).where(models.c.name == bindparam("name"))
_MODEL = _MODEL_ANY.where(models.c.deleted_at.is_(None))
_VERSION_ANY = select(model_versions).where(model_versions.c.model_id == bindparam("model_id"),
                                            model_versions.c.version == bindparam("number"))
_VERSION = _VERSION_ANY.where(model_versions.c.deleted_at.is_(None))
_LATEST = (select(model_versions)
           .where(model_versions.c.model_id == bindparam("model_id"),
                  model_versions.c.deleted_at.is_(None))
           .order_by(model_versions.c.version.desc()).limit(1))
_LATEST_IN_STAGE = _LATEST.where(model_versions.c.stage == bindparam("stage"))
_BY_ALIAS = (select(model_versions)
             .join(aliases, aliases.c.version_id == model_versions.c.id)
             .where(aliases.c.model_id == bindparam("model_id"),
                    aliases.c.alias == bindparam("alias")))
_ALIASES = select(aliases.c.version_id, aliases.c.alias).order_by(aliases.c.alias)
_ALIASES_OF_VERSIONS = _ALIASES.where(aliases.c.version_id.in_(bindparam("ids", expanding=True)))
_ALIASES_OF_MODELS = _ALIASES.where(aliases.c.model_id.in_(bindparam("ids", expanding=True)))


# A version by its model's name, in one statement (the model's row is not read apart):
# what resolving an address costs when it names something that exists.
_OF_NAMED = (model_versions.c.model_id == models.c.id, models.c.name == bindparam("name"),
             models.c.deleted_at.is_(None))
_NAMED = select(model_versions).join(models, _OF_NAMED[0]).where(*_OF_NAMED[1:])
_NAMED_VERSION = _NAMED.where(model_versions.c.version == bindparam("number"),
                              model_versions.c.deleted_at.is_(None))
_NAMED_LATEST = (_NAMED.where(model_versions.c.deleted_at.is_(None))
                 .order_by(model_versions.c.version.desc()).limit(1))
_NAMED_LATEST_IN_STAGE = _NAMED_LATEST.where(model_versions.c.stage == bindparam("stage"))
_NAMED_BY_ALIAS = (select(model_versions)
                   .join(aliases, aliases.c.version_id == model_versions.c.id)
                   .join(models, models.c.id == aliases.c.model_id)
                   .where(*_OF_NAMED[1:], aliases.c.alias == bindparam("alias")))
_ALIASES_OF_VERSION = (select(aliases.c.alias)
                       .where(aliases.c.version_id == bindparam("version_id"))
                       .order_by(aliases.c.alias))


def find_named_version(conn: Connection, name: str, kind: str,
                       value: str | int | None) -> VersionRow | None:
    """The version of the live model ``name`` that a reference names (``kind``: number,
    stage, alias or latest, as in ``refs.RefKind``), or None when there is none (the
    caller finds out why)."""
    if kind == "number":
        return conn.execute(_NAMED_VERSION, {"name": name, "number": value}).one_or_none()
    if kind == "stage":
        return conn.execute(_NAMED_LATEST_IN_STAGE,
                            {"name": name, "stage": value}).one_or_none()
    if kind == "alias":
        return conn.execute(_NAMED_BY_ALIAS, {"name": name, "alias": value}).one_or_none()
    return conn.execute(_NAMED_LATEST, {"name": name}).one_or_none()


def aliases_of_version(conn: Connection, version_id: int) -> list[str]:
    """One version's aliases, sorted."""
    return list(conn.execute(_ALIASES_OF_VERSION, {"version_id": version_id}).scalars())


def find_model(conn: Connection, name: str, *, include_deleted: bool = False) -> ModelRow | None:
    return conn.execute(_MODEL_ANY if include_deleted else _MODEL,
                        {"name": name}).one_or_none()


def insert_model_if_missing(
    conn: Connection, *, name: str, description: str, tags: dict[str, str], actor: str,
    at: datetime,
) -> bool:
    """Create the model unless a row with that name exists; True when this call created it."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(models)
        .values(name=name, description=description, tags=tags, last_version=0,
                created_by=actor, created_at=at, updated_at=at)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(models.c.id)
    )
    return conn.execute(statement).first() is not None


_ALLOCATE = (update(models)
             .where(models.c.name == bindparam("model_name"), models.c.deleted_at.is_(None))
             .values(last_version=models.c.last_version + 1, updated_at=bindparam("at"))
             .returning(models.c.id, models.c.last_version))


def allocate_version(conn: Connection, name: str, at: datetime) -> tuple[int, int] | None:
    """Bump the model's counter; returns (model_id, new version) or None if no live model."""
    row = conn.execute(_ALLOCATE, {"model_name": name, "at": at}).first()
    return (int(row.id), int(row.last_version)) if row else None


def lock_model(conn: Connection, model_id: int, at: datetime) -> None:
    """Serialise lifecycle changes of one model (a row lock on both engines)."""
    conn.execute(update(models).where(models.c.id == model_id).values(updated_at=at))


def update_model(conn: Connection, model_id: int, **values: Any) -> None:
    conn.execute(update(models).where(models.c.id == model_id).values(**values))


def list_models(
    conn: Connection, *, cursor: Sequence[Any] | None = None, limit: int | None = None
) -> list[ModelRow]:
    query = select(models).where(models.c.deleted_at.is_(None))
    return list(conn.execute(keyset(query, [models.c.name], cursor, limit)))


def model_summaries(conn: Connection, model_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per model: live version count, latest live version, production version."""
    ids = list(model_ids)
    live = model_versions.c.deleted_at.is_(None)
    summary: dict[int, dict[str, Any]] = {
        i: {"count": 0, "latest": None, "production": None} for i in ids
    }
    if not ids:
        return summary
    counts = conn.execute(
        select(model_versions.c.model_id, func.count(), func.max(model_versions.c.version))
        .where(model_versions.c.model_id.in_(ids), live)
        .group_by(model_versions.c.model_id)
    )
    for model_id, count, latest in counts:
        summary[model_id].update(count=count, latest=latest)
    production = conn.execute(
        select(model_versions.c.model_id, model_versions.c.version).where(
            model_versions.c.model_id.in_(ids), model_versions.c.stage == "production", live
        )
    )
    for model_id, version in production:
        summary[model_id]["production"] = version
    return summary


_INSERT_VERSION = model_versions.insert().returning(*model_versions.c)
_INSERT_VALUES = version_values.insert()


def insert_version(conn: Connection, **values: Any) -> VersionRow:
    """The version row and, in the same transaction, its indexed params, metrics and tags.
    Returns the row as stored (the database's reading of its JSON), so the caller need not
    read it back."""
    row = conn.execute(_INSERT_VERSION, values).one()
    _write_values(conn, int(row.id), values, new=True)
    return row


_INDEXED = ("params", "metrics", "tags")


def _write_values(conn: Connection, version_id: int, values: dict[str, Any],
                  new: bool = False) -> None:
    """(Re)write the ``version_values`` rows of the fields ``values`` sets (a ``new``
    version has none to delete)."""
    fields = [f for f in _INDEXED if f in values]
    if not fields:
        return
    if not new:
        conn.execute(version_values.delete().where(version_values.c.version_id == version_id,
                                                   version_values.c.field.in_(fields)))
    rows = value_rows(version_id, *(values.get(f) or {} for f in _INDEXED))
    rows = [r for r in rows if r["field"] in fields]
    if rows:
        conn.execute(_INSERT_VALUES, rows)


def find_version(conn: Connection, model_id: int, number: int) -> VersionRow | None:
    return conn.execute(_VERSION, {"model_id": model_id, "number": number}).one_or_none()


def find_version_any(conn: Connection, model_id: int, number: int) -> VersionRow | None:
    """Also finds soft-deleted versions (to explain why a number is gone)."""
    return conn.execute(_VERSION_ANY, {"model_id": model_id, "number": number}).one_or_none()


def latest_in_stage(conn: Connection, model_id: int, stage: str | None) -> VersionRow | None:
    if stage is None:
        return conn.execute(_LATEST, {"model_id": model_id}).one_or_none()
    return conn.execute(_LATEST_IN_STAGE, {"model_id": model_id, "stage": stage}).one_or_none()


def find_by_alias(conn: Connection, model_id: int, alias: str) -> VersionRow | None:
    return conn.execute(_BY_ALIAS, {"model_id": model_id, "alias": alias}).one_or_none()


# A search reads the four JSON columns as one JSON object per row, so a page of 10,000 is
# one json.loads, not 40,000 calls through SQLAlchemy's result processing (with the times'
# parsing, most of a search's time before).
_SCALARS = ("id", "model_id", "version", "digest", "artifact_kind", "artifact_name", "size",
            "file_count", "stage", "description", "created_by", "created_at", "updated_at")
_JSON = ("params", "metrics", "tags", "lineage")


def _json_object(names: Sequence[str]) -> ColumnElement[str]:
    """``{"params": …, …}`` as text, from the JSON columns' text: the database only
    concatenates (the names need no escaping)."""
    text: ColumnElement[str] = literal("{")
    for i, name in enumerate(names):
        text = text + f'{"," if i else ""}"{name}":' + cast(model_versions.c[name], Text)
    return text + "}"


_SEARCHED = [*(model_versions.c[c] for c in _SCALARS), _json_object(_JSON).label("values"),
             models.c.name]


def list_versions(
    conn: Connection, *, model_ids: Iterable[int] | None = None,
    condition: Condition | None = None, cursor: Sequence[Any] | None = None,
    limit: int | None = None, descending: bool = False,
) -> list[dict[str, Any]]:
    """Live versions by (model name, number), or its reverse, narrowed by ``condition``
    (``storage.sql.filters``), after ``cursor``: each a dict of the version's columns and
    its model's ``name``, with ``sure`` (whether SQL settled the match).

    A condition that bounds its versions (``candidates``) drives the query: its index
    lookup first, then each hit's row by id, rather than every version probed against it.
    """
    query = select(*_SEARCHED)
    if condition is not None and condition.candidates is not None:
        hits = condition.candidates.subquery("hits")
        query = query.select_from(hits.join(model_versions,
                                            model_versions.c.id == hits.c.version_id))
    query = query.join_from(model_versions, models, models.c.id == model_versions.c.model_id)
    query = query.where(model_versions.c.deleted_at.is_(None), models.c.deleted_at.is_(None))
    if model_ids is not None:
        query = query.where(model_versions.c.model_id.in_(list(model_ids)))
    settled = condition is None or condition.exact
    if condition is not None:
        query = query.where(condition.maybe)
        if not settled:
            query = query.add_columns(condition.sure.label("sure"))
    rows = conn.execute(keyset(query, [models.c.name, model_versions.c.version], cursor,
                               limit, descending=descending)).all()
    if not rows:
        return []
    fields = rows[0]._fields
    at = fields.index("values")
    found: list[dict[str, Any]] = json_values.loads("[" + ",".join(r[at] for r in rows) + "]")
    for row, record in zip(rows, found, strict=True):
        record.update(zip(fields, row, strict=True))
        if settled:
            record["sure"] = True
    return found


def aliases_by_version(
    conn: Connection, model_ids: Iterable[int], version_ids: Iterable[int]
) -> dict[int, list[str]]:
    """Aliases of the versions ``version_ids`` (of the models ``model_ids``), by name.

    A long list is looked up by its models (they hold few aliases; other versions' come
    along), so a search returning 100,000 versions binds no 100,000 ids (SQLite allows
    32,766)."""
    ids = set(version_ids)
    found: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return found
    by_model = len(ids) > _MAX_IDS
    rows = conn.execute(_ALIASES_OF_MODELS if by_model else _ALIASES_OF_VERSIONS,
                        {"ids": list(set(model_ids)) if by_model else list(ids)})
    for version_id, alias in rows:
        found[version_id].append(alias)
    return found


_MAX_IDS = 500  # ids bound in one IN list


def aliases_of_model(conn: Connection, model_id: int) -> dict[str, int]:
    return aliases_of_models(conn, [model_id])[model_id]


def aliases_of_models(conn: Connection, model_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Each model's aliases (alias -> version number), in one query per ``_MAX_IDS`` models,
    so a page of models costs one statement, not one per model."""
    found: dict[int, dict[str, int]] = {model_id: {} for model_id in model_ids}
    for start in range(0, len(model_ids), _MAX_IDS):
        rows = conn.execute(
            select(aliases.c.model_id, aliases.c.alias, model_versions.c.version)
            .join(model_versions, model_versions.c.id == aliases.c.version_id)
            .where(aliases.c.model_id.in_(model_ids[start:start + _MAX_IDS]))
        )
        for model_id, alias, version in rows:
            found[model_id][alias] = int(version)
    return found


def update_version(conn: Connection, version_id: int, **values: Any) -> None:
    conn.execute(update(model_versions).where(model_versions.c.id == version_id).values(**values))
    _write_values(conn, version_id, values)


def set_alias(
    conn: Connection, *, model_id: int, alias: str, version_id: int, actor: str, at: datetime
) -> None:
    existing = and_(aliases.c.model_id == model_id, aliases.c.alias == alias)
    conn.execute(aliases.delete().where(existing))
    conn.execute(
        aliases.insert().values(model_id=model_id, alias=alias, version_id=version_id,
                                created_by=actor, created_at=at)
    )


def delete_alias(conn: Connection, model_id: int, alias: str) -> None:
    conn.execute(aliases.delete().where(aliases.c.model_id == model_id, aliases.c.alias == alias))


def referenced_digests(conn: Connection) -> list[tuple[str, str]]:
    """(digest, artifact kind) of every stored version, deleted ones included."""
    query = select(model_versions.c.digest, model_versions.c.artifact_kind).distinct()
    return [(d, k) for d, k in conn.execute(query)]


def owners_of_digests(conn: Connection,
                      digests: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    """(digest, kind, owner) for what stores content at ``digests`` (every root when None):
    owner is ``models:/NAME/V``, ``datasets:/NAME/V`` or ``runs:/RUN_ID/PATH``, deleted
    versions included. ``verify`` names with it whose content is damaged."""
    queries = [  # (digest, kind, the two parts of the address) and the address's scheme
        ("models", select(model_versions.c.digest, model_versions.c.artifact_kind,
                          models.c.name, model_versions.c.version)
         .join(models, models.c.id == model_versions.c.model_id)),
        ("datasets", select(dataset_versions.c.digest, dataset_versions.c.kind,
                            datasets.c.name, dataset_versions.c.version)
         .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)),
        ("runs", select(run_artifacts.c.digest, run_artifacts.c.kind, run_artifacts.c.run_id,
                        run_artifacts.c.path)),
    ]
    wanted = None if digests is None else sorted(set(digests))
    batches = [None] if wanted is None else [wanted[i:i + 500]
                                            for i in range(0, len(wanted), 500)]
    found: list[tuple[str, str, str]] = []
    for scheme, query in queries:
        column = query.selected_columns[0]
        for batch in batches:
            rows = conn.execute(query if batch is None else query.where(column.in_(batch)))
            found += [(d, k, f"{scheme}:/{a}/{b}") for d, k, a, b in rows]
    return sorted(found, key=lambda row: (row[2], row[0]))
