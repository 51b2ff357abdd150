"""Modelyard's side of the registry scenarios: embedded (SQLite + local object store), or
through ``modelyard server`` with the remote client.

Runs in Modelyard's own environment. ``url`` and ``token`` name a server (its registry,
for the untimed bulk load, is the embedded one at ``home``); without them the embedded
registry at ``home`` is measured. Connecting (and creating the schema) happens before any
phase starts, as it does for the anchors.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

import modelyard
from bench.drivers.common import Args, Report, concurrent_writers, serve
from modelyard.services.registry import Registry, RegistryApi
from modelyard.storage.sql import repository as repo
from modelyard.storage.sql.filters import value_rows
from modelyard.storage.sql.schema import model_versions, models, version_values

MODEL = "bench-model"


def _connect(args: Args) -> RegistryApi:
    """The registry a step measures: the server's, else the embedded one."""
    if "url" in args:
        return modelyard.connect(args["url"], token=args["token"])
    return _embedded(args)


def _embedded(args: Args) -> Registry:
    return modelyard.open_embedded(modelyard.Settings.resolve(home=args["home"], user="bench"))


def register_download(args: Args, report: Report) -> None:
    with _connect(args) as reg:
        with report.phase("register"):
            version = reg.register(f"{MODEL}-{args['run']}", args["source"])
        with report.phase("download"):
            reg.download(version.uri, args["out"])


def create_versions(args: Args, report: Report) -> None:
    with _connect(args) as reg:
        name = f"{MODEL}-{args['run']}"
        reg.create_model(name)
        with report.phase(f"create {args['count']:,} versions"):
            for i in range(int(args["count"])):
                reg.register(name, args["file"], params={"i": i})


def populate(args: Args, report: Report) -> None:
    """Bulk-load ``count`` versions (untimed setup for scenarios 7 and 8).

    Registering 100,000 versions one by one would dominate the suite for every tool, so
    each tool is loaded through its own storage layer: rows identical to what
    ``register`` writes, tags ``shard`` = i mod 10, one production version, ``@champion``.
    """
    count, now = int(args["count"]), datetime.now(UTC)
    with _embedded(args) as reg:
        stored = reg.store.put_tree(args["file"])
        with reg.db.transaction() as conn:
            repo.insert_model_if_missing(conn, name=MODEL, description="", tags={},
                                         actor="bench", at=now)
            model = repo.find_model(conn, MODEL)
            assert model is not None
            conn.execute(model_versions.insert(), [
                dict(model_id=model.id, version=i, digest=stored.digest, artifact_kind="file",
                     artifact_name="model.bin", size=stored.size, file_count=1,
                     stage="production" if i == count // 2 else "none", params={},
                     metrics={"auc": (i % 100) / 100}, tags={"shard": str(i % 10)},
                     description="", lineage={}, created_by="bench", created_at=now,
                     updated_at=now)
                for i in range(1, count + 1)
            ])
            conn.execute(version_values.insert(), [
                row for v in conn.execute(select(model_versions).where(
                    model_versions.c.model_id == model.id))
                for row in value_rows(v.id, v.params, v.metrics, v.tags)])
            conn.execute(update(models).where(models.c.id == model.id)
                         .values(last_version=count))
        reg.set_alias(MODEL, "champion", count // 2)


def resolve(args: Args, report: Report) -> None:
    with _connect(args) as reg:
        calls = int(args["calls"])
        report.latencies("resolve production",
                         lambda: reg.get_version(f"models:/{MODEL}/production"), calls)
        report.latencies("resolve @alias",
                         lambda: reg.get_version(f"models:/{MODEL}@champion"), calls)


def search(args: Args, report: Report) -> None:
    label = args["label"]
    with _connect(args) as reg:
        for what, query in (("tag", f"name = '{MODEL}' and tags.shard = '3'"),
                            ("metric", f"name = '{MODEL}' and metrics.auc >= 0.9")):
            reg.search_versions(query)  # warm the page cache, as a running service would be
            with report.phase(f"search by {what} ({label})"):
                found = reg.search_versions(query)
            report.extra[f"{what}_matches"] = len(found)


def _writer(args: Args, index: int, barrier: Any) -> tuple[list[int], int]:
    numbers, errors = [], 0
    with _connect(args) as reg:
        barrier.wait(timeout=600)
        for _ in range(int(args["per_writer"])):
            try:
                version = reg.register(args["model"], args["file"], tags={"writer": str(index)})
                numbers.append(version.version)
            except Exception:  # counted, not fatal: errors are what this scenario measures
                errors += 1
    return numbers, errors


def writers(args: Args, report: Report) -> None:
    args = {**args, "model": f"{MODEL}-w{args['run']}"}  # a fresh model per run
    with _connect(args) as reg:
        reg.create_model(args["model"])
    concurrent_writers(_writer, args, report)


if __name__ == "__main__":
    serve({"register_download": register_download, "create_versions": create_versions,
           "populate": populate, "resolve": resolve, "search": search, "writers": writers})
