"""How MLflow's identifiers and artifact locations map onto the registry's records.

- An experiment's id is its name, except MLflow's default experiment ``0``, which is the
  registry's ``default`` (where ``create_run`` puts a run given no experiment).
- A run's id is the registry's run id (both are 32 hex digits).
- A logged model (MLflow 3) is kept as a run of its experiment, tagged as one: it has what
  a logged model has (a name, params, metrics, tags, files, a status that ends once) and
  every change to it is audited as a run's. Its id is ``m-`` and that run's id, so no
  table maps the two. Tags under ``modelyard.mlflow.`` are this adapter's bookkeeping
  (which run logged the model, which models a run logged) and MLflow clients never see
  them.
- Artifact locations, all ``mlflow-artifacts:/`` (the client reaches them through the
  tracking server's ``/api/2.0/mlflow-artifacts/artifacts/`` proxy)::

    <experiment id>/<run id>/artifacts/<path>            a run's files
    <experiment id>/models/<model id>/artifacts/<path>   a logged model's files
    _models/<name>/<version>/<path>                      a registered version's content

  ``_`` starts no experiment name, so the namespaces cannot collide.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import urlparse

from modelyard.domain.entities import ModelVersion
from modelyard.domain.names import check_version_number
from modelyard.domain.runs import Run
from modelyard.errors import InvalidInput, NotFound
from modelyard.services.registry import Registry
from modelyard.storage.content.manifest import check_path

DEFAULT_EXPERIMENT = "default"
DEFAULT_EXPERIMENT_ID = "0"
SCHEME = "mlflow-artifacts:"
PROXY_PATH = "/api/2.0/mlflow-artifacts/artifacts/"
VERSIONS_ROOT = "_models"

INTERNAL = "modelyard.mlflow."
LOGGED_MODEL = INTERNAL + "logged_model"
SOURCE_RUN = INTERNAL + "source_run_id"
MODEL_TYPE = INTERNAL + "model_type"
OUTPUTS = INTERNAL + "outputs"
INPUTS = INTERNAL + "inputs"
_MODEL_ID = re.compile(r"m-([0-9a-f]{32})", re.ASCII)


def experiment_id(name: str) -> str:
    return DEFAULT_EXPERIMENT_ID if name == DEFAULT_EXPERIMENT else name


def experiment_name(identifier: str) -> str:
    return DEFAULT_EXPERIMENT if identifier == DEFAULT_EXPERIMENT_ID else identifier


def is_logged_model(run: Run) -> bool:
    return run.tags.get(LOGGED_MODEL) == "true"


def model_id(run: Run) -> str:
    return f"m-{run.run_id}"


def logged_model(registry: Registry, identifier: str) -> Run:
    """The run that keeps logged model ``identifier``."""
    match = _MODEL_ID.fullmatch(identifier or "")
    run = None
    if match is not None:
        with suppress(NotFound):
            run = registry.get_run(match.group(1))
    if run is None or not is_logged_model(run):
        raise NotFound(f"logged model {identifier!r} not found")
    return run


def visible_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if not k.startswith(INTERNAL)}


def run_location(run: Run) -> str:
    exp = experiment_id(run.experiment)
    if is_logged_model(run):
        return f"{SCHEME}/{exp}/models/{model_id(run)}/artifacts"
    return f"{SCHEME}/{exp}/{run.run_id}/artifacts"


def version_location(version: ModelVersion) -> str:
    return f"{SCHEME}/{VERSIONS_ROOT}/{version.name}/{version.version}"


@dataclass(frozen=True)
class Place:
    """A path inside the files of a run (a logged model's too) or of a version."""

    path: str
    run: Run | None = None
    version: ModelVersion | None = None


def artifact_path(uri: str) -> str | None:
    """The proxy path of an ``mlflow-artifacts:`` URI (with or without a host) or of a
    URL of this proxy; None for any other address."""
    if uri.startswith(SCHEME):
        return urlparse(uri).path.lstrip("/")
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https") and PROXY_PATH in parsed.path:
        return parsed.path.split(PROXY_PATH, 1)[1]
    return None


def locate(registry: Registry, path: str) -> Place:
    """The run or version a proxy path names, read as the caller (so roles apply), and
    the path inside it; NotFound for a path that names nothing."""
    segments = path.strip("/").split("/")
    head, rest = segments[:4], "/".join(segments[4:])
    if segments[0] == VERSIONS_ROOT and len(segments) >= 3:
        version = registry.get_version(segments[1], check_version_number(segments[2]))
        return Place(_inner("/".join(segments[3:])), version=version)
    if len(head) == 4 and head[1] == "models" and head[3] == "artifacts":
        run = logged_model(registry, head[2])
    elif len(head) >= 3 and head[2] == "artifacts":
        run, rest = _run(registry, head[1]), "/".join(segments[3:])
        if is_logged_model(run):
            raise NotFound(f"no artifact location {path!r}")
    else:
        raise NotFound(f"no artifact location {path!r}",
                       hint="artifact locations come from runs, logged models and "
                            "get-download-uri")
    if experiment_id(run.experiment) != head[0]:
        raise NotFound(f"no artifact location {path!r}")
    return Place(_inner(rest), run=run)


def _run(registry: Registry, run_id: str) -> Run:
    try:
        return registry.get_run(run_id)
    except InvalidInput:
        raise NotFound(f"run {run_id!r} not found") from None


def _inner(path: str) -> str:
    return check_path(path) if path else ""
