"""``modelyard.start_run``: track a training script as a run, from inside the script.

```python
with modelyard.start_run(experiment="fraud", name="gbm") as run:
    run.log_params({"lr": 0.1}); run.log_metric("auc", 0.91, step=10)
    run.log_input("data/train.csv"); run.log_model(model, "model")
    version = run.register_model("fraud")
```

The run records git state, Python, platform, installed packages and the user when it
starts. Leaving the block ends it as ``finished``; an exception inside marks it
``failed`` and propagates. Everything goes through the ``Registry`` API, so a run is the
same record whichever registry (SQLite, PostgreSQL) it is written to.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from modelyard.domain.entities import ModelVersion
from modelyard.domain.runs import Run as RunRecord
from modelyard.domain.runs import RunArtifact, RunStatus
from modelyard.environment import git_state, python_environment
from modelyard.flavors import save_model
from modelyard.services.registry import RegistryApi


class Run:
    """A live run: log to it while it runs, then leave the ``with`` block (or ``end()``)."""

    def __init__(self, registry: RegistryApi, record: RunRecord, *, owns_registry: bool) -> None:
        self.registry = registry
        self.run_id = record.run_id
        self.experiment = record.experiment
        self.name = record.name
        self._owns_registry = owns_registry
        self._ended = False

    def __repr__(self) -> str:
        return f"Run({self.run_id}, experiment={self.experiment!r}, name={self.name!r})"

    @property
    def info(self) -> RunRecord:
        """The run as stored now (params, latest metrics, tags, inputs, artifacts)."""
        return self.registry.get_run(self.run_id)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        self.registry.log_params(self.run_id, params)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """Append a point to ``key``'s history; ``step`` defaults to the next one."""
        self.log_metrics({key: value}, step=step)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.registry.log_metrics(self.run_id, metrics, step=step)

    def set_tag(self, key: str, value: Any) -> None:
        self.registry.set_run_tags(self.run_id, {key: value})

    def log_input(self, ref: str | os.PathLike[str]) -> dict[str, Any]:
        """Record a dataset by digest: a path, a ``.yard`` pointer or ``datasets:/NAME/V``."""
        return self.registry.log_run_input(self.run_id, ref)

    def log_artifact(self, path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> RunArtifact:
        """Store a file or folder as ``runs:/<run_id>/<artifact_path>`` (default: its name)."""
        return self.registry.log_run_artifact(self.run_id, path, artifact_path=artifact_path)

    def log_model(
        self, model: Any, artifact_path: str = "model", *, flavor: str | None = None,
        signature: dict[str, Any] | None = None, input_example: Any = None, **options: Any,
    ) -> RunArtifact:
        """Save ``model`` with its flavor (detected unless given) and log it as an artifact.

        The folder holds the model files and ``modelyard.yaml`` (flavor, signature, input
        example); ``reg.load`` of a version registered from it returns a live object.
        """
        with tempfile.TemporaryDirectory(prefix="modelyard-model-") as tmp:
            folder = Path(tmp) / "model"
            descriptor = save_model(model, folder, flavor=flavor, signature=signature,
                                    input_example=input_example, **options)
            return self.registry.log_run_artifact(self.run_id, folder,
                                                  artifact_path=artifact_path,
                                                  flavor=descriptor["flavor"])

    def register_model(self, name: str, artifact_path: str = "model",
                       **kwargs: Any) -> ModelVersion:
        """Register ``runs:/<run_id>/<artifact_path>`` as the next version of ``name``.

        Its lineage points at this run; keyword arguments go to ``Registry.register``
        (``parent=``, ``tags=``, ``description=``, ``aliases=`` …).
        """
        return self.registry.register(name, f"runs:/{self.run_id}/{artifact_path}", **kwargs)

    def end(self, status: str = RunStatus.FINISHED.value) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            self.registry.end_run(self.run_id, status)
        finally:
            if self._owns_registry:
                self.registry.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.end(RunStatus.FAILED.value if exc_type is not None else RunStatus.FINISHED.value)


def start_run(
    experiment: str = "default", name: str | None = None, *, registry: RegistryApi | None = None,
    tags: dict[str, Any] | None = None, cwd: str | os.PathLike[str] | None = None,
) -> Run:
    """Open a run in ``experiment`` (created if missing) on ``registry`` (default:
    ``modelyard.connect()``); ``cwd`` is the working tree whose git state is recorded."""
    owns = registry is None
    if registry is None:
        from modelyard import connect

        registry = connect()
    try:
        record = registry.create_run(experiment, name=name, tags=tags, git=git_state(cwd),
                                     environment=python_environment())
    except BaseException:
        if owns:
            registry.close()
        raise
    return Run(registry, record, owns_registry=owns)
