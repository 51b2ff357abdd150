"""The unmodified ``mlflow`` client (its own venv) against our server: the registry calls a
team's scripts make, with a Modelyard token as MLFLOW_TRACKING_TOKEN, under our rules."""

from __future__ import annotations

from pathlib import Path

import modelyard
from mlflow_api.conftest import MlflowRunner


def test_the_mlflow_client_registers_tags_aliases_and_searches(
    mlflow_client: MlflowRunner,
) -> None:
    result = mlflow_client("""
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
        client = MlflowClient()
        client.create_registered_model("fraud", tags={"team": "risk"}, description="first")
        try:
            client.create_registered_model("fraud")
            duplicate = None
        except MlflowException as exc:
            duplicate = exc.error_code
        mlflow.set_experiment("churn")
        with mlflow.start_run() as run:
            mlflow.log_param("lr", 0.1)
            mlflow.log_metric("auc", 0.93)
            open("model.txt", "w").write("weights")
            mlflow.log_artifact("model.txt", artifact_path="model")
        version = client.create_model_version("fraud", f"runs:/{run.info.run_id}/model",
                                              run_id=run.info.run_id)
        client.set_registered_model_alias("fraud", "champion", version.version)
        by_alias = client.get_model_version_by_alias("fraud", "champion")
        found = [m.name for m in client.search_registered_models()]
        versions = client.search_model_versions("name = 'fraud'")
        emit({"duplicate": duplicate, "version": version.version, "alias": by_alias.version,
              "models": found, "versions": [v.version for v in versions],
              "tags": client.get_registered_model("fraud").tags})
    """)
    assert result["duplicate"] == "RESOURCE_ALREADY_EXISTS"
    assert result["version"] == result["alias"] == "1"
    assert result["models"] == ["fraud"] and result["versions"] == ["1"]
    assert result["tags"] == {"team": "risk"}
    server = mlflow_client.server
    reg = modelyard.connect(server.url, token=server.token)
    version = reg.get_version("models:/fraud@champion")
    assert version.created_by == "ana"  # the token's user, as MLflow sent it
    reg.close()


def test_production_through_mlflow_waits_for_approval(mlflow_client: MlflowRunner,
                                                      tmp_path: Path) -> None:
    server = mlflow_client.server
    reg = modelyard.connect(server.url, token=server.token)
    model = tmp_path / "w.bin"
    model.write_bytes(b"weights")
    reg.register("fraud", model)
    reg.set_policy("fraud", approvals=1)
    reg.close()
    result = mlflow_client("""
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
        client = MlflowClient()
        client.transition_model_version_stage("fraud", "1", "Staging")
        try:
            client.transition_model_version_stage("fraud", "1", "Production")
            refused = None
        except MlflowException as exc:
            refused = [exc.error_code, exc.message]
        emit({"refused": refused,
              "stage": client.get_model_version("fraud", "1").current_stage})
    """)
    code, message = result["refused"]
    assert "modelyard request" in message and result["stage"] == "Staging"
    assert code
