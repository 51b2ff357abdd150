"""``modelyard import mlflow`` against a real ``mlflow server`` that the real MLflow client
populated: models, versions (MLflow 3 logged models and MLflow 2 run folders), their runs,
tags, aliases, stages and descriptions come over; a dry run writes nothing; an interrupted
import resumes; a second import copies nothing."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import modelyard
from mlflow_api.conftest import MlflowServer
from modelyard.cli.main import app
from modelyard.services.mlflow_import import ImportReport, MlflowImport, MlflowSource
from modelyard.services.registry import Registry

POPULATE = """
    import hashlib, os
    import mlflow, mlflow.artifacts, mlflow.sklearn
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    def digests(root):
        return {os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/"):
                hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
                for d, _, files in os.walk(root) for f in files}

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    client = MlflowClient()
    mlflow.set_experiment("fraud-exp")
    with mlflow.start_run(run_name="train-1") as first:
        mlflow.log_param("C", "1.0")
        for step, loss in enumerate([0.9, 0.5, 0.3]):
            mlflow.log_metric("loss", loss, step=step)
        open("notes.txt", "w").write("first try")
        mlflow.log_artifact("notes.txt")
        mlflow.sklearn.log_model(LogisticRegression().fit(X, y), name="model")
    v1 = mlflow.register_model(f"runs:/{first.info.run_id}/model", "fraud")
    with mlflow.start_run(run_name="train-2") as second:
        mlflow.log_param("C", "0.5")
        mlflow.log_metric("loss", 0.2)
        os.makedirs("folder/data")
        open("folder/MLmodel", "w").write("flavors: {}")
        open("folder/data/weights.bin", "wb").write(os.urandom(3000))
        mlflow.log_artifacts("folder", artifact_path="model")
    source = f"{second.info.artifact_uri}/model"
    v2 = client.create_model_version("fraud", source, run_id=second.info.run_id,
                                     description="second", tags={"reviewed": "yes"})
    client.update_registered_model("fraud", description="card fraud")
    client.set_registered_model_tag("fraud", "team", "risk")
    client.set_registered_model_alias("fraud", "champion", v1.version)
    client.transition_model_version_stage("fraud", v1.version, "Production")
    client.transition_model_version_stage("fraud", v2.version, "Staging")
    client.create_registered_model("my model")
    client.create_registered_model("churn")
    c1 = client.create_model_version("churn", source, run_id=second.info.run_id)
    client.transition_model_version_stage("churn", c1.version, "Archived")
    emit({"first": first.info.run_id, "second": second.info.run_id,
          "created": {v.version: v.creation_timestamp
                      for v in client.search_model_versions("name = 'fraud'")},
          "fraud1": digests(mlflow.artifacts.download_artifacts("models:/fraud/1",
                                                                dst_path="dl1")),
          "fraud2": digests(mlflow.artifacts.download_artifacts("models:/fraud/2",
                                                                dst_path="dl2"))})
"""


@pytest.fixture(scope="module")
def populated(mlflow_server: MlflowServer) -> dict[str, Any]:
    result: dict[str, Any] = mlflow_server.client(POPULATE)
    return result


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def _import(reg: Registry, server: MlflowServer, **options: Any) -> ImportReport:
    source = MlflowSource(server.url)
    try:
        return MlflowImport(reg, source).run(**options)
    finally:
        source.close()


def test_import_copies_the_registry_resumes_and_is_idempotent(
    mlflow_server: MlflowServer, populated: dict[str, Any], tmp_path: Path,
) -> None:
    reg = modelyard.connect(f"sqlite:///{tmp_path / 'r.db'}", store=str(tmp_path / "objects"),
                            user="ana")
    assert isinstance(reg, Registry)
    planned = _import(reg, mlflow_server, dry_run=True)
    assert (planned.models, planned.versions, planned.runs) == (2, 3, 2)
    assert planned.bytes > 3000 and list(reg.list_models()) == []

    def interrupt(done: int, total: int, label: str) -> None:
        if done == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _import(reg, mlflow_server, models=["fraud"], progress=interrupt)
    assert [v.version for v in reg.list_versions("fraud")] == [1]

    report = _import(reg, mlflow_server)
    assert (report.models, report.versions, report.runs) == (1, 2, 1)
    assert report.already_imported == 1 and not report.renumbered
    why = {u["what"]: u["why"] for u in report.unmapped}
    assert "not a valid Modelyard name" in why["model 'my model'"]
    assert "modelyard request" in why["version 1 of 'fraud'"]  # the policy still decides

    created = datetime.fromtimestamp(populated["created"]["1"] / 1000, UTC)
    model = reg.get_model("fraud")
    assert model.description == "card fraud" and model.tags["team"] == "risk"
    assert model.tags["modelyard.import.source"] == "mlflow"  # and when MLflow made it:
    assert datetime.fromisoformat(model.tags["modelyard.import.created_at"]) <= created
    assert model.aliases == {"champion": 1}
    one, two = reg.get_version("fraud", 1), reg.get_version("fraud", 2)
    assert (one.stage, two.stage, reg.get_version("churn", 1).stage) == (
        "staging", "staging", "archived")
    assert two.description == "second" and two.tags == {"reviewed": "yes"}
    for version, expected in ((1, populated["fraud1"]), (2, populated["fraud2"])):
        out = reg.download("fraud", tmp_path / f"out{version}", version=version)
        expected.pop("registered_model_meta")  # the client writes it beside a download
        assert _digests(out) == expected  # every file, byte for byte
    imported = one.lineage["imported"]
    assert imported["from"] == "mlflow" and imported["version"] == "1"
    assert imported["source"].startswith("models:/m-")  # an MLflow 3 logged model
    assert datetime.fromisoformat(imported["created_at"]) == created  # MLflow's, kept

    run = reg.get_run(one.lineage["run_id"])
    assert run.tags["modelyard.import.run_id"] == populated["first"]
    assert run.status == "finished" and run.params == {"C": "1.0"}
    assert [(p.step, p.value) for p in reg.metric_history(run.run_id, "loss")] == [
        (0, 0.9), (1, 0.5), (2, 0.3)]
    assert [a.path for a in run.artifacts] == ["notes.txt"]
    assert reg.get_version("churn", 1).lineage["run_id"] == two.lineage["run_id"]

    registered = [e for e in reg.audit("fraud") if e.action == "version.register"]
    assert [e.after["lineage"]["imported"]["version"] for e in registered] == ["1", "2"]
    assert {e.actor for e in registered} == {"ana"}  # the importer acted; MLflow's are facts
    reg.close()

    cli = CliRunner().invoke(app, ["--registry", f"sqlite:///{tmp_path / 'r.db'}",
                                   "--store", str(tmp_path / "objects"), "--user", "ana",
                                   "import", "mlflow", "--tracking-uri", mlflow_server.url,
                                   "--json"])
    assert cli.exit_code == 0, cli.output
    again = json.loads(cli.stdout)
    assert again["versions"] == again["models"] == again["runs"] == again["updates"] == 0
    assert again["already_imported"] == 3 and again["copied_nothing"]
