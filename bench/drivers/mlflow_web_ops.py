"""MLflow's side of the web UI scenario: the ajax-api calls its UI makes for the same pages.

Runs in the anchors' environment against ``mlflow server``. MLflow's pages are drawn in
the browser from JSON, so the server's share of a page is those calls: the models list
(``registered-models/search``), and for a model ``registered-models/get`` plus
``model-versions/search`` of its versions, a page of 50 as Modelyard shows. Each is timed
over loopback HTTP, as Modelyard's pages are.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from bench.drivers import mlflow_ops
from bench.drivers.common import Args, Report, serve

PAGE = 50
PAGE_WARMUP = 5


def populate(args: Args, report: Report) -> None:
    """The 10,000-version model of scenarios 7 and 8, and ``models`` more models."""
    from mlflow.store.model_registry.dbmodels.models import (
        SqlRegisteredModel,
        SqlRegisteredModelTag,
    )
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    mlflow_ops.populate(args, report)
    now = int(time.time() * 1000)
    store = SqlAlchemyStore(args["db"])
    with store.ManagedSessionMaker() as session:
        names = [f"model-{i:05d}" for i in range(int(args["models"]))]
        session.add_all([SqlRegisteredModel(name=n, creation_time=now, last_updated_time=now)
                         for n in names])
        session.flush()
        session.add_all([SqlRegisteredModelTag(name=n, key="team", value=str(i % 7))
                         for i, n in enumerate(names)])


def _get(base: str, path: str, **query: object) -> dict[str, object]:
    address = f"{base}/ajax-api/2.0/mlflow/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(address, timeout=60) as answer:
        found: dict[str, object] = json.loads(answer.read())
    return found


def pages(args: Args, report: Report) -> None:
    base, model = args["uri"], mlflow_ops.MODEL

    def models_page() -> None:
        found = _get(base, "registered-models/search", max_results=PAGE,
                     order_by="name ASC")
        assert found.get("registered_models"), found

    def model_page() -> None:
        _get(base, "registered-models/get", name=model)
        found = _get(base, "model-versions/search", filter=f"name='{model}'",
                     max_results=PAGE, order_by="version_number DESC")
        assert len(found.get("model_versions", [])) == PAGE, found  # type: ignore[arg-type]

    for label, fetch in (("models page", models_page), ("model page", model_page)):
        for _ in range(PAGE_WARMUP):
            fetch()
        report.latencies(label, fetch, int(args["calls"]))


if __name__ == "__main__":
    serve({"populate": populate, "pages": pages})
