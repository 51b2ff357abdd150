"""Row-level queries over the tracking tables, one function per question.

Like ``storage.repository``: services compose these inside a transaction; nothing here
commits or writes audit events.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from modelyard.storage.sql.paging import keyset
from modelyard.storage.sql.schema import model_versions, models
from modelyard.storage.sql.tracking_schema import (
    experiments,
    run_artifacts,
    run_inputs,
    run_metrics,
    run_params,
    run_tags,
    runs,
)

RunRow = Row[Any]


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def find_experiment(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(select(experiments).where(experiments.c.name == name)).one_or_none()


def insert_experiment_if_missing(
    conn: Connection, *, name: str, description: str, tags: dict[str, str], actor: str,
    at: datetime,
) -> bool:
    """Create the experiment unless it exists; True when this call created it."""
    statement = (
        _insert(conn)(experiments)
        .values(name=name, description=description, tags=tags, created_by=actor, created_at=at)
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(experiments.c.id)
    )
    return conn.execute(statement).first() is not None


def list_experiments(
    conn: Connection, *, cursor: Sequence[Any] | None = None, limit: int | None = None
) -> list[Row[Any]]:
    counts = (
        select(runs.c.experiment_id, func.count().label("run_count"))
        .group_by(runs.c.experiment_id)
        .subquery()
    )
    query = (
        select(experiments, func.coalesce(counts.c.run_count, 0).label("run_count"))
        .outerjoin(counts, counts.c.experiment_id == experiments.c.id)
    )
    return list(conn.execute(keyset(query, [experiments.c.name], cursor, limit)))


def insert_run(conn: Connection, **values: Any) -> None:
    conn.execute(runs.insert().values(**values))


def _runs_query() -> Any:
    return select(runs, experiments.c.name.label("experiment")).join(
        experiments, experiments.c.id == runs.c.experiment_id
    )


def find_run(conn: Connection, run_id: str) -> RunRow | None:
    return conn.execute(_runs_query().where(runs.c.id == run_id)).one_or_none()


def list_runs(
    conn: Connection, *, experiment: str | None = None, status: str | None = None,
    cursor: Sequence[Any] | None = None, limit: int | None = None,
) -> list[RunRow]:
    """Runs, newest first (start time, then id, both descending), after ``cursor``."""
    query = _runs_query()
    if experiment is not None:
        query = query.where(experiments.c.name == experiment)
    if status is not None:
        query = query.where(runs.c.status == status)
    order = [runs.c.start_time, runs.c.id]
    return list(conn.execute(keyset(query, order, cursor, limit, descending=True)))


def update_run(conn: Connection, run_id: str, **values: Any) -> None:
    conn.execute(update(runs).where(runs.c.id == run_id).values(**values))


def params_of(conn: Connection, run_id: str) -> dict[str, Any]:
    rows = conn.execute(select(run_params.c.key, run_params.c.value)
                        .where(run_params.c.run_id == run_id))
    return {key: json.loads(value) for key, value in rows}


def insert_params(conn: Connection, run_id: str, params: dict[str, Any]) -> None:
    conn.execute(run_params.insert(),
                 [{"run_id": run_id, "key": k, "value": json.dumps(v)} for k, v in params.items()])


def upsert_tags(conn: Connection, run_id: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        statement = _insert(conn)(run_tags).values(run_id=run_id, key=key, value=value)
        conn.execute(statement.on_conflict_do_update(index_elements=["run_id", "key"],
                                                     set_={"value": value}))


def next_steps(conn: Connection, run_id: str, keys: Iterable[str]) -> dict[str, int]:
    """Per metric key: one past the highest step logged so far (0 for a new key)."""
    wanted = list(keys)
    rows = conn.execute(
        select(run_metrics.c.key, func.max(run_metrics.c.step))
        .where(run_metrics.c.run_id == run_id, run_metrics.c.key.in_(wanted))
        .group_by(run_metrics.c.key)
    )
    found = {key: int(step) + 1 for key, step in rows}
    return {key: found.get(key, 0) for key in wanted}


def insert_metrics(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(run_metrics.insert(), rows)


def metric_history(conn: Connection, run_id: str, key: str) -> list[Row[Any]]:
    query = (select(run_metrics)
             .where(run_metrics.c.run_id == run_id, run_metrics.c.key == key)
             .order_by(run_metrics.c.step, run_metrics.c.id))
    return list(conn.execute(query))


def _by_run(conn: Connection, query: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    for run_id, key, value in conn.execute(query):
        found[run_id][key] = value
    return found


def latest_metrics(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """Per run, each metric's value at its highest step (the last logged wins a tie)."""
    ranked = (
        select(
            run_metrics.c.run_id, run_metrics.c.key, run_metrics.c.value,
            func.row_number().over(
                partition_by=(run_metrics.c.run_id, run_metrics.c.key),
                order_by=(run_metrics.c.step.desc(), run_metrics.c.id.desc()),
            ).label("rank"),
        )
        .where(run_metrics.c.run_id.in_(run_ids))
        .subquery()
    )
    query = select(ranked.c.run_id, ranked.c.key, ranked.c.value).where(ranked.c.rank == 1)
    return _by_run(conn, query)


def params_of_runs(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    query = select(run_params.c.run_id, run_params.c.key, run_params.c.value).where(
        run_params.c.run_id.in_(run_ids))
    return {run_id: {k: json.loads(v) for k, v in params.items()}
            for run_id, params in _by_run(conn, query).items()}


def tags_of_runs(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    query = select(run_tags.c.run_id, run_tags.c.key, run_tags.c.value).where(
        run_tags.c.run_id.in_(run_ids))
    return _by_run(conn, query)


def inputs_of_runs(conn: Connection, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    query = (select(run_inputs.c.run_id, run_inputs.c.dataset)
             .where(run_inputs.c.run_id.in_(run_ids)).order_by(run_inputs.c.id))
    for run_id, dataset in conn.execute(query):
        found[run_id].append(dict(dataset))
    return found


def insert_input_if_missing(
    conn: Connection, run_id: str, dataset: dict[str, Any], at: datetime
) -> bool:
    statement = (
        _insert(conn)(run_inputs)
        .values(run_id=run_id, digest=dataset["digest"], dataset=dataset, created_at=at)
        .on_conflict_do_nothing(index_elements=["run_id", "digest"])
        .returning(run_inputs.c.id)
    )
    return conn.execute(statement).first() is not None


def artifacts_of_runs(conn: Connection, run_ids: list[str]) -> dict[str, list[Row[Any]]]:
    found: dict[str, list[Row[Any]]] = defaultdict(list)
    query = (select(run_artifacts).where(run_artifacts.c.run_id.in_(run_ids))
             .order_by(run_artifacts.c.path))
    for row in conn.execute(query):
        found[row.run_id].append(row)
    return found


def find_artifact(conn: Connection, run_id: str, path: str) -> Row[Any] | None:
    query = select(run_artifacts).where(run_artifacts.c.run_id == run_id,
                                        run_artifacts.c.path == path)
    return conn.execute(query).one_or_none()


def upsert_artifact(conn: Connection, **values: Any) -> Row[Any] | None:
    """Record an artifact; returns the row it replaced (same run and path), if any."""
    before = find_artifact(conn, values["run_id"], values["path"])
    if before is not None:
        conn.execute(run_artifacts.delete().where(run_artifacts.c.id == before.id))
    conn.execute(run_artifacts.insert().values(**values))
    return before


def children_of(conn: Connection, names: Iterable[str], version: int, digest: str
                ) -> list[Row[Any]]:
    """Live versions whose lineage names this version as their parent: by any name its model
    had (a lineage keeps the name of its registration) and its number and digest (so a
    version of another model that had the name later is not taken for it)."""
    parent = model_versions.c.lineage
    query = (
        select(model_versions, models.c.name)
        .join(models, models.c.id == model_versions.c.model_id)
        .where(
            model_versions.c.deleted_at.is_(None), models.c.deleted_at.is_(None),
            parent[("parent", "name")].as_string().in_(sorted(names)),
            parent[("parent", "version")].as_integer() == version,
            parent[("parent", "digest")].as_string() == digest,
        )
        .order_by(models.c.name, model_versions.c.version)
    )
    return list(conn.execute(query))


def referenced_artifact_digests(conn: Connection) -> list[tuple[str, str]]:
    """(digest, kind) of every logged run artifact: ``verify`` checks them like versions."""
    query = select(run_artifacts.c.digest, run_artifacts.c.kind).distinct()
    return [(d, k) for d, k in conn.execute(query)]
