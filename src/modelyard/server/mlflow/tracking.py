"""MLflow's tracking API, as far as logging and registering a model needs it.

Experiments, runs (params, metrics, tags, log-batch, metric history, artifact listings)
and MLflow 3's logged models, each call one of the registry's tracking operations. Times
are the registry's: a run starts and ends when the server says so, and a metric point is
stamped when it arrives (MLflow's client-side timestamps are not kept). Runs follow the
registry's rules: params are set once, and only a running run is logged to.
"""

from __future__ import annotations

import json
import math
from typing import Any

from modelyard.domain.runs import MetricPoint, Run, RunStatus
from modelyard.errors import InvalidInput
from modelyard.server.mlflow import places
from modelyard.server.mlflow.artifacts import listing, tree_of
from modelyard.server.mlflow.search import (
    Fields,
    Order,
    check_max_results,
    page,
    parse_filter,
    parse_order,
)
from modelyard.server.mlflow.wire import (
    API_PREFIXES,
    Call,
    Routes,
    compact,
    key_values,
    millis,
    unsupported,
)
from modelyard.services.registry import Registry

routes = Routes(API_PREFIXES)
_RUN_STATUS = {RunStatus.RUNNING: "RUNNING", RunStatus.FINISHED: "FINISHED",
               RunStatus.FAILED: "FAILED"}
_ENDED = {"FINISHED": RunStatus.FINISHED, "FAILED": RunStatus.FAILED,
          "KILLED": RunStatus.FAILED}
_MODEL_STATUS = {RunStatus.RUNNING: "LOGGED_MODEL_PENDING",
                 RunStatus.FINISHED: "LOGGED_MODEL_READY",
                 RunStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED"}
_FINALIZED = {"LOGGED_MODEL_READY": RunStatus.FINISHED,
              "LOGGED_MODEL_UPLOAD_FAILED": RunStatus.FAILED}
_NUMBERS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _run_id(call: Call) -> str:
    return call.text("run_id") or call.text("run_uuid", required=True)


# -- experiments ---------------------------------------------------------------------------

def experiment(found: Any) -> dict[str, Any]:
    identifier = places.experiment_id(found.name)
    return {"experiment_id": identifier, "name": found.name,
            "artifact_location": f"{places.SCHEME}/{identifier}", "lifecycle_stage": "active",
            "creation_time": millis(found.created_at),
            "last_update_time": millis(found.created_at), "tags": key_values(found.tags)}


@routes.rpc("POST", "/experiments/create")
def create_experiment(call: Call) -> dict[str, Any]:
    made = call.registry.create_experiment(call.text("name", required=True),
                                           tags=call.pairs("tags"))
    return {"experiment_id": places.experiment_id(made.name)}


@routes.rpc("GET", "/experiments/get")
def get_experiment(call: Call) -> dict[str, Any]:
    name = places.experiment_name(call.text("experiment_id", required=True))
    return {"experiment": experiment(call.registry.get_experiment(name))}


@routes.rpc("GET", "/experiments/get-by-name")
def get_experiment_by_name(call: Call) -> dict[str, Any]:
    return {"experiment": experiment(call.registry.get_experiment(
        call.text("experiment_name", required=True)))}


@routes.rpc("POST", "/experiments/search")
@routes.rpc("GET", "/experiments/search")
def search_experiments(call: Call) -> dict[str, Any]:
    where = parse_filter(call.text("filter"), ["name", "creation_time", "last_update_time"])
    order = parse_order(
        call.texts("order_by"),
        {"name": lambda e: e.name, "experiment_id": lambda e: places.experiment_id(e.name),
         "creation_time": lambda e: millis(e.created_at),
         "last_update_time": lambda e: millis(e.created_at)},
        identity=[(lambda e: e.name, False)], default=["last_update_time DESC"])
    found, token = page(
        [e for e in call.registry.list_experiments() if where.matches(Fields(
            {"name": e.name, "creation_time": millis(e.created_at),
             "last_update_time": millis(e.created_at)}, e.tags))],
        order, check_max_results(call.number("max_results"), 1000, 50_000),
        call.optional("page_token"), "experiments")
    return compact({"experiments": [experiment(e) for e in found], "next_page_token": token})


@routes.rpc("POST", "/experiments/delete")
@routes.rpc("POST", "/experiments/restore")
@routes.rpc("POST", "/experiments/update")
@routes.rpc("POST", "/experiments/set-experiment-tag")
@routes.rpc("POST", "/experiments/delete-experiment-tag")
def change_experiment(call: Call) -> None:
    raise unsupported("changing an experiment after it is created (rename, delete, "
                      "restore, tags)", "an experiment is kept as it was created")


# -- runs ----------------------------------------------------------------------------------

def run_info(run: Run) -> dict[str, Any]:
    return compact({
        "run_id": run.run_id, "run_uuid": run.run_id, "run_name": run.name,
        "experiment_id": places.experiment_id(run.experiment), "user_id": run.created_by,
        "status": _RUN_STATUS[RunStatus(run.status)], "start_time": millis(run.start_time),
        "end_time": millis(run.end_time), "artifact_uri": places.run_location(run),
        "lifecycle_stage": "active"})


def _latest_metrics(registry: Registry, run: Run) -> list[dict[str, Any]]:
    """Each metric's last point (highest step, then latest), as MLflow reports a run's."""
    points = [max(registry.metric_history(run.run_id, key),
                  key=lambda p: (p.step, p.timestamp)) for key in sorted(run.metrics)]
    return [_metric(p, run.run_id) for p in points]


def _metric(point: MetricPoint, run_id: str) -> dict[str, Any]:
    return {"key": point.key, "value": _json_number(point.value),
            "timestamp": millis(point.timestamp), "step": point.step, "run_id": run_id}


def _json_number(value: float) -> float | str:
    """A double as protobuf's JSON writes it: NaN and infinities as strings (JSON has
    no literal for them)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def run_record(registry: Registry, run: Run) -> dict[str, Any]:
    outputs = json.loads(run.tags.get(places.OUTPUTS, "[]"))
    inputs = json.loads(run.tags.get(places.INPUTS, "[]"))
    return {"info": run_info(run),
            "data": {"metrics": _latest_metrics(registry, run),
                     "params": key_values(run.params),
                     "tags": key_values(places.visible_tags(run.tags))},
            "inputs": {"model_inputs": inputs}, "outputs": {"model_outputs": outputs}}


@routes.rpc("POST", "/runs/create")
def create_run(call: Call) -> dict[str, Any]:
    name = places.experiment_name(call.text("experiment_id") or places.DEFAULT_EXPERIMENT_ID)
    made = call.registry.create_run(name, name=call.optional("run_name"),
                                    tags=call.pairs("tags"))
    return {"run": run_record(call.registry, made)}


@routes.rpc("GET", "/runs/get")
def get_run(call: Call) -> dict[str, Any]:
    return {"run": run_record(call.registry, call.registry.get_run(_run_id(call)))}


@routes.rpc("POST", "/runs/update")
def update_run(call: Call) -> dict[str, Any]:
    run = call.registry.get_run(_run_id(call))
    name = call.optional("run_name")
    if name is not None and name != run.name:
        raise unsupported("renaming a run", "a run keeps the name it started with")
    status = call.text("status")
    if status and status not in (*_ENDED, "RUNNING", "SCHEDULED"):
        raise InvalidInput(f"invalid run status {status!r}")
    if status in _ENDED:
        run = call.registry.end_run(run.run_id, _ENDED[status].value)
    return {"run_info": run_info(run)}


@routes.rpc("POST", "/runs/delete")
@routes.rpc("POST", "/runs/restore")
def change_run_lifecycle(call: Call) -> None:
    raise unsupported("deleting or restoring runs", "a run is part of the audited record "
                                                    "of what produced a version")


@routes.rpc("POST", "/runs/search")
def search_runs(call: Call) -> dict[str, Any]:
    where = parse_filter(call.text("filter"), ["run_id", "run_name", "status", "user_id",
                                               "start_time", "end_time", "experiment_id"],
                         ("attribute", "tag", "param", "metric"))
    order: Order[Run] = parse_order(
        call.texts("order_by"),
        {"run_id": lambda r: r.run_id, "run_name": lambda r: r.name,
         "status": lambda r: _RUN_STATUS[RunStatus(r.status)],
         "start_time": lambda r: millis(r.start_time),
         "end_time": lambda r: millis(r.end_time)},
        identity=[(lambda r: r.run_id, False)], default=["attributes.start_time DESC"],
        prefixed={"metric": lambda k: lambda r: r.metrics.get(k),
                  "param": lambda k: lambda r: r.params.get(k),
                  "tag": lambda k: lambda r: r.tags.get(k)})
    runs = [r for exp in call.texts("experiment_ids") for r in call.registry.list_runs(
        places.experiment_name(exp)) if not places.is_logged_model(r)]
    found, token = page(
        [r for r in runs if where.matches(_run_fields(r))], order,
        check_max_results(call.number("max_results"), 1000, 50_000),
        call.optional("page_token"), "runs")
    return compact({"runs": [run_record(call.registry, r) for r in found],
                    "next_page_token": token})


def _run_fields(run: Run) -> Fields:
    return Fields({"run_id": run.run_id, "run_name": run.name,
                   "status": _RUN_STATUS[RunStatus(run.status)], "user_id": run.created_by,
                   "start_time": millis(run.start_time), "end_time": millis(run.end_time),
                   "experiment_id": places.experiment_id(run.experiment)},
                  places.visible_tags(run.tags), run.params, run.metrics)


@routes.rpc("POST", "/runs/log-parameter")
def log_param(call: Call) -> None:
    call.registry.log_params(_run_id(call), {call.text("key", required=True):
                                             call.text("value")})


@routes.rpc("POST", "/runs/set-tag")
def set_tag(call: Call) -> None:
    call.registry.set_run_tags(_run_id(call), {call.text("key", required=True):
                                               call.text("value")})


@routes.rpc("POST", "/runs/delete-tag")
def delete_tag(call: Call) -> None:
    raise unsupported("deleting a run's tag", "set it to another value instead")


@routes.rpc("POST", "/runs/log-metric")
def log_metric(call: Call) -> None:
    _log_points(call.registry, _run_id(call), [dict(call.fields)])


@routes.rpc("POST", "/runs/log-batch")
def log_batch(call: Call) -> None:
    run_id = call.text("run_id", required=True)
    if params := call.pairs("params"):
        call.registry.log_params(run_id, params)
    _log_points(call.registry, run_id, call.records("metrics"))
    if tags := call.pairs("tags"):
        call.registry.set_run_tags(run_id, tags)


def _log_points(registry: Registry, run_id: str, metrics: list[dict[str, Any]]) -> None:
    """Metric points in the order sent, one ``log_metrics`` per run of points that share
    a target and a step. A point for a logged model (``model_id``) is that model's."""
    batch: dict[str, float] = {}
    target: tuple[str, int] | None = None
    for point in metrics:
        key, value, step = point.get("key"), point.get("value"), point.get("step") or 0
        value = _NUMBERS.get(value, value) if isinstance(value, str) else value
        if isinstance(step, str) and step.isdigit():
            step = int(step)
        if not isinstance(key, str) or not isinstance(step, int) or isinstance(
                value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"invalid metric {str(point)[:120]}: expected a key, a numeric "
                               "value and an integer step")
        owner = (places.logged_model(registry, point["model_id"]).run_id
                 if point.get("model_id") else run_id)
        if (owner, step) != target or key in batch:
            if target is not None:
                registry.log_metrics(target[0], batch, step=target[1])
            batch, target = {}, (owner, step)
        batch[key] = float(value)
    if target is not None:
        registry.log_metrics(target[0], batch, step=target[1])


@routes.rpc("GET", "/metrics/get-history")
def get_metric_history(call: Call) -> dict[str, Any]:
    run_id = _run_id(call)
    points = call.registry.metric_history(run_id, call.text("metric_key", required=True))
    return {"metrics": [_metric(p, run_id) for p in points]}


@routes.rpc("GET", "/artifacts/list")
def list_run_artifacts(call: Call) -> dict[str, Any]:
    run = call.registry.get_run(_run_id(call))
    path = call.text("path").strip("/")
    place = places.Place(path, run=run)
    files = listing(tree_of(call.store, place), path)
    return {"root_uri": places.run_location(run), "files": [
        {**f, "path": f"{path}/{f['path']}" if path else f["path"]} for f in files]}


@routes.rpc("POST", "/runs/log-inputs")
def log_inputs(call: Call) -> None:
    """Models a run used are noted on it; MLflow datasets (a description and MLflow's
    own digest) have no counterpart: the registry records data by content."""
    if call.records("datasets"):
        raise unsupported("MLflow dataset inputs", "record training data with Modelyard "
                          "('modelyard data add', run.log_input(...)), which keeps it by digest")
    _note_models(call, places.INPUTS, [{"model_id": m.get("model_id")}
                                       for m in call.records("models")])


@routes.rpc("POST", "/runs/outputs")
def log_outputs(call: Call) -> None:
    _note_models(call, places.OUTPUTS, [{"model_id": m.get("model_id"),
                                         "step": int(m.get("step") or 0)}
                                        for m in call.records("models")])


def _note_models(call: Call, tag: str, models: list[dict[str, Any]]) -> None:
    run = call.registry.get_run(call.text("run_id", required=True))
    for m in models:
        places.logged_model(call.registry, str(m["model_id"]))
    known = json.loads(run.tags.get(tag, "[]"))
    added = [m for m in models if m not in known]
    if added:
        call.registry.set_run_tags(run.run_id, {tag: json.dumps(known + added)})


# -- logged models (MLflow 3) --------------------------------------------------------------

def logged_model(registry: Registry, run: Run) -> dict[str, Any]:
    info = compact({
        "model_id": places.model_id(run), "experiment_id": places.experiment_id(run.experiment),
        "name": run.name, "creation_timestamp_ms": millis(run.start_time),
        "last_updated_timestamp_ms": millis(run.end_time or run.start_time),
        "artifact_uri": places.run_location(run),
        "status": _MODEL_STATUS[RunStatus(run.status)],
        "model_type": run.tags.get(places.MODEL_TYPE) or None,
        "source_run_id": run.tags.get(places.SOURCE_RUN) or None,
        "tags": key_values(places.visible_tags(run.tags))})
    return {"info": info, "data": {"params": key_values(run.params),
                                   "metrics": _latest_metrics(registry, run)}}


@routes.rpc("POST", "/logged-models")
def create_logged_model(call: Call) -> dict[str, Any]:
    bookkeeping = {places.LOGGED_MODEL: "true", places.SOURCE_RUN: call.text("source_run_id"),
                   places.MODEL_TYPE: call.text("model_type")}
    run = call.registry.create_run(
        places.experiment_name(call.text("experiment_id", required=True)),
        name=call.text("name") or "model", tags={**call.pairs("tags"), **bookkeeping})
    if params := call.pairs("params"):
        call.registry.log_params(run.run_id, params)
        run = call.registry.get_run(run.run_id)
    return {"model": logged_model(call.registry, run)}


@routes.rpc("GET", "/logged-models/{model_id}")
def get_logged_model(call: Call) -> dict[str, Any]:
    return {"model": logged_model(call.registry,
                                  places.logged_model(call.registry, call.path["model_id"]))}


@routes.rpc("PATCH", "/logged-models/{model_id}")
def finalize_logged_model(call: Call) -> dict[str, Any]:
    """READY or UPLOAD_FAILED ends the model's run; finalizing again to the status it
    already has changes nothing."""
    run = places.logged_model(call.registry, call.path["model_id"])
    status = call.text("status", required=True)
    if status not in _FINALIZED:
        raise InvalidInput(f"invalid logged model status {status!r}",
                           hint=f"expected one of {', '.join(_FINALIZED)}")
    if run.status != _FINALIZED[status]:
        run = call.registry.end_run(run.run_id, _FINALIZED[status].value)
    return {"model": logged_model(call.registry, run)}


@routes.rpc("DELETE", "/logged-models/{model_id}")
@routes.rpc("DELETE", "/logged-models/{model_id}/tags/{tag_key}")
def delete_logged_model(call: Call) -> None:
    raise unsupported("deleting logged models or their tags", "a logged model is kept "
                      "with the run that logged it; set a tag to another value instead")


@routes.rpc("PATCH", "/logged-models/{model_id}/tags")
def set_logged_model_tags(call: Call) -> dict[str, Any]:
    run = places.logged_model(call.registry, call.path["model_id"])
    tags = {k: v for k, v in call.pairs("tags").items() if not k.startswith(places.INTERNAL)}
    if tags:
        call.registry.set_run_tags(run.run_id, tags)
    return {"model": logged_model(call.registry, call.registry.get_run(run.run_id))}


@routes.rpc("POST", "/logged-models/{model_id}/params")
def log_logged_model_params(call: Call) -> None:
    run = places.logged_model(call.registry, call.path["model_id"])
    call.registry.log_params(run.run_id, call.pairs("params"))


@routes.rpc("GET", "/logged-models/{model_id}/artifacts/directories")
def list_logged_model_artifacts(call: Call) -> dict[str, Any]:
    run = places.logged_model(call.registry, call.path["model_id"])
    path = call.text("artifact_directory_path").strip("/")
    files = listing(tree_of(call.store, places.Place(path, run=run)), path)
    return {"root_uri": places.run_location(run), "files": [
        {**f, "path": f"{path}/{f['path']}" if path else f["path"]} for f in files]}


@routes.rpc("POST", "/logged-models/search")
def search_logged_models(call: Call) -> dict[str, Any]:
    where = parse_filter(call.text("filter"),
                         ["name", "model_id", "model_type", "status", "source_run_id",
                          "creation_timestamp", "last_updated_timestamp"],
                         ("attribute", "tag", "param", "metric"))
    readers = {"name": lambda r: r.name, "model_id": places.model_id,
               "creation_timestamp": lambda r: millis(r.start_time),
               "last_updated_timestamp": lambda r: millis(r.end_time or r.start_time)}
    order: Order[Run] = parse_order(
        [f"{o.get('field_name')} {'ASC' if o.get('ascending', True) else 'DESC'}"
         for o in call.records("order_by")], readers,
        identity=[(places.model_id, False)], default=["creation_timestamp DESC"],
        prefixed={"metric": lambda k: lambda r: r.metrics.get(k)})
    models = [r for exp in call.texts("experiment_ids") for r in call.registry.list_runs(
        places.experiment_name(exp)) if places.is_logged_model(r)]
    found, token = page(
        [r for r in models if where.matches(_model_fields(r))], order,
        check_max_results(call.number("max_results"), 100, 1000),
        call.optional("page_token"), "logged-models")
    return compact({"models": [logged_model(call.registry, r) for r in found],
                    "next_page_token": token})


def _model_fields(run: Run) -> Fields:
    return Fields({"name": run.name, "model_id": places.model_id(run),
                   "model_type": run.tags.get(places.MODEL_TYPE) or None,
                   "status": _MODEL_STATUS[RunStatus(run.status)],
                   "source_run_id": run.tags.get(places.SOURCE_RUN) or None,
                   "creation_timestamp": millis(run.start_time),
                   "last_updated_timestamp": millis(run.end_time or run.start_time)},
                  places.visible_tags(run.tags), run.params, run.metrics)
