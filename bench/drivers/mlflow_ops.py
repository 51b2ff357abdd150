"""MLflow's side of the registry scenarios: its Python API on a SQLite store, or its server.

Runs in the anchors' environment. ``uri`` is ``sqlite:///…`` (the API straight on the
database, ``artifacts`` a folder) or ``http://127.0.0.1:PORT`` (an ``mlflow server`` on
SQLite that serves the artifacts; ``db`` its database, for the untimed bulk load).
Creating the store and the experiment happens before any phase starts, as it does for
Modelyard.
"""

from __future__ import annotations

import warnings
from typing import Any

import mlflow
from mlflow import MlflowClient

from bench.drivers.common import Args, Report, concurrent_writers, serve

MODEL = "bench-model"
SOURCE = "s3://bench-artifacts/model"  # metadata-only scenarios: MLflow records a URI, no upload

warnings.filterwarnings("ignore", category=FutureWarning)  # stages are deprecated, still used


def _client(args: Args) -> MlflowClient:
    mlflow.set_tracking_uri(args["uri"])
    mlflow.set_registry_uri(args["uri"])
    return MlflowClient(args["uri"], args["uri"])


def register_download(args: Args, report: Report) -> None:
    client = _client(args)
    name = f"{MODEL}-{args['run']}"  # a server keeps its database between runs
    experiment = mlflow.create_experiment(name, artifact_location=args.get("artifacts"))
    with report.phase("register"):
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifacts(args["source"], artifact_path="model")
        # what register_model does, with the run named (a server checks the source's run)
        client.create_registered_model(name)
        version = client.create_model_version(name, f"{run.info.artifact_uri}/model",
                                              run_id=run.info.run_id)
    with report.phase("download"):
        mlflow.artifacts.download_artifacts(f"models:/{name}/{version.version}",
                                            dst_path=args["out"])


def create_versions(args: Args, report: Report) -> None:
    client = _client(args)
    name = f"{MODEL}-{args['run']}"
    client.create_registered_model(name)
    with report.phase(f"create {args['count']:,} versions"):
        for i in range(int(args["count"])):
            client.create_model_version(name, SOURCE, tags={"i": str(i)})


def populate(args: Args, report: Report) -> None:
    """Bulk-load ``count`` versions through MLflow's own ORM (untimed setup for 7 and 8).

    Same content as Modelyard's loader: tag ``shard`` = i mod 10, one Production
    version, alias ``champion``.
    """
    from mlflow.store.model_registry.dbmodels.models import SqlModelVersion, SqlModelVersionTag
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    count = int(args["count"])
    client = _client(args)
    client.create_registered_model(MODEL)
    store = SqlAlchemyStore(args.get("db", args["uri"]))
    with store.ManagedSessionMaker() as session:
        for i in range(1, count + 1):
            session.add(SqlModelVersion(
                name=MODEL, version=i, source=SOURCE, creation_time=i, last_updated_time=i,
                current_stage="Production" if i == count // 2 else "None", status="READY",
            ))
        session.flush()
        session.add_all([SqlModelVersionTag(name=MODEL, version=i, key="shard", value=str(i % 10))
                         for i in range(1, count + 1)])
    client.set_registered_model_alias(MODEL, "champion", str(count // 2))


def resolve(args: Args, report: Report) -> None:
    client = _client(args)
    calls = int(args["calls"])
    report.latencies("resolve production",
                     lambda: client.get_latest_versions(MODEL, stages=["Production"]), calls)
    report.latencies("resolve @alias",
                     lambda: client.get_model_version_by_alias(MODEL, "champion"), calls)


def _search_all(client: MlflowClient, query: str) -> list[Any]:
    """Every match: MLflow pages model-version searches (at most 10,000 per page)."""
    found: list[Any] = []
    token = None
    while True:
        page = client.search_model_versions(query, max_results=10_000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def search(args: Args, report: Report) -> None:
    client = _client(args)
    query = f"name = '{MODEL}' and tags.shard = '3'"
    _search_all(client, query)
    with report.phase(f"search by tag ({args['label']})"):
        found = _search_all(client, query)
    report.extra["tag_matches"] = len(found)


def _writer(args: Args, index: int, barrier: Any) -> tuple[list[int], int]:
    numbers, errors = [], 0
    client = _client(args)
    barrier.wait(timeout=600)
    for _ in range(int(args["per_writer"])):
        try:
            version = client.create_model_version(args["model"], SOURCE,
                                                  tags={"writer": str(index)})
            numbers.append(int(version.version))
        except Exception:  # counted, not fatal: errors are what this scenario measures
            errors += 1
    return numbers, errors


def writers(args: Args, report: Report) -> None:
    args = {**args, "model": f"{MODEL}-w{args['run']}"}  # a fresh model per run
    _client(args).create_registered_model(args["model"])
    concurrent_writers(_writer, args, report)


if __name__ == "__main__":
    serve({"register_download": register_download, "create_versions": create_versions,
           "populate": populate, "resolve": resolve, "search": search, "writers": writers})
