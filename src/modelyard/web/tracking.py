"""Runs, experiments and datasets."""

from __future__ import annotations

from fastapi import Request, Response

from modelyard.domain.runs import Run
from modelyard.errors import InvalidInput
from modelyard.web import svg
from modelyard.web.views import PAGE_SIZE, SignedIn, page_router, render

routes = page_router()
USED_BY_LIMIT = 200  # model versions listed as having used a dataset


@routes.get("/runs")
def runs_page(request: Request, v: SignedIn, experiment: str | None = None, filter: str = "",
              page_token: str | None = None) -> Response:
    """Runs, newest first, of one experiment and matching the filter language if asked."""
    runs: list[Run] = []
    next_token, error = None, None
    try:
        found = v.registry.list_runs(experiment or None, filter.strip() or None,
                                     max_results=PAGE_SIZE, page_token=page_token)
        runs, next_token = list(found), found.next_page_token
    except InvalidInput as refused:
        error = refused
    metrics: dict[str, None] = {}
    for run in runs:
        metrics.update(dict.fromkeys(run.metrics))
    return render(request, "runs.html", http_status=400 if error else 200, runs=runs,
                  experiment=experiment or "", filter=filter, filter_error=error,
                  metrics=list(metrics)[:4], next_token=next_token,
                  experiments=v.registry.list_experiments())


@routes.get("/runs/{run_id}")
def run_page(request: Request, v: SignedIn, run_id: str) -> Response:
    """A run: params, metric charts by step, artifacts, inputs, code, environment, and
    the model versions registered from it."""
    reg = v.registry
    run = reg.get_run(run_id)
    charts = [svg.line_chart([svg.Datum(p.step, p.value, f"step {p.step}: {p.value:.6g}")
                              for p in reg.metric_history(run_id, key)],
                             title=key, x_label="step", width=420, height=180)
              for key in sorted(run.metrics)]
    produced = reg.search_versions(f"run_id = '{run.run_id}'", max_results=PAGE_SIZE)
    return render(request, "run.html", run=run, charts=charts, produced=produced)


@routes.get("/experiments")
def experiments_page(request: Request, v: SignedIn, page_token: str | None = None) -> Response:
    found = v.registry.list_experiments(max_results=PAGE_SIZE, page_token=page_token)
    return render(request, "experiments.html", experiments=found,
                  next_token=found.next_page_token)


@routes.get("/datasets")
def datasets_page(request: Request, v: SignedIn, page_token: str | None = None) -> Response:
    """Every registered dataset version, by name and number."""
    found = v.registry.list_datasets(max_results=PAGE_SIZE, page_token=page_token)
    return render(request, "datasets.html", datasets=found, next_token=found.next_page_token)


@routes.get("/datasets/{name}")
def dataset_page(request: Request, v: SignedIn, name: str) -> Response:
    """A dataset's versions and the model versions whose lineage names each of them."""
    reg = v.registry
    reg.get_dataset(name)  # NotFound (with a suggestion) for an unknown name
    versions = reg.list_datasets(name)
    used: dict[str, list[tuple[str, int]]] = {d.digest: [] for d in versions}
    wanted = " or ".join(f"datasets = '{d.digest}'" for d in versions)
    for found in reg.search_versions(wanted, max_results=USED_BY_LIMIT):
        for data in found.lineage.get("datasets") or []:
            if data.get("digest") in used:
                used[data["digest"]].append((found.name, found.version))
    return render(request, "dataset.html", name=name, versions=versions, used=used)
