"""The unmodified ``mlflow`` client (its own venv) against our server: the registry calls a
team's scripts make, with a Modelyard token as MLFLOW_TRACKING_TOKEN, under our rules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import modelyard
from mlflow_api.conftest import LiveServer, MlflowRunner


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
        tags = client.get_registered_model("fraud").tags
        client.set_registered_model_tag("fraud", "tier", "1")
        client.set_model_version_tag("fraud", version.version, "owner", "ana")
        client.delete_registered_model_tag("fraud", "team")
        client.delete_registered_model_tag("fraud", "never-set")  # no error, as in MLflow
        client.delete_model_version_tag("fraud", version.version, "owner")
        client.rename_registered_model("fraud", "fraud-v2")  # MlflowClient returns None
        renamed = client.get_registered_model("fraud-v2")
        try:
            client.get_registered_model("fraud")
            old_name = None
        except MlflowException as exc:
            old_name = exc.error_code
        moved = client.get_model_version_by_alias("fraud-v2", "champion")
        emit({"duplicate": duplicate, "version": version.version, "alias": by_alias.version,
              "models": found, "versions": [v.version for v in versions], "tags": tags,
              "renamed": [renamed.name, renamed.tags], "old_name": old_name,
              "moved": [moved.name, moved.version, moved.tags],
              "after": [m.name for m in client.search_registered_models()]})
    """)
    assert result["duplicate"] == "RESOURCE_ALREADY_EXISTS"
    assert result["version"] == result["alias"] == "1"
    assert result["models"] == ["fraud"] and result["versions"] == ["1"]
    assert result["tags"] == {"team": "risk"}
    assert result["renamed"] == ["fraud-v2", {"tier": "1"}]
    assert result["old_name"] == "RESOURCE_DOES_NOT_EXIST"
    assert result["moved"] == ["fraud-v2", "1", {}]
    assert result["after"] == ["fraud-v2"]
    server = mlflow_client.server
    reg = modelyard.connect(server.url, token=server.token)
    version = reg.get_version("models:/fraud-v2@champion")
    assert version.created_by == "ana"  # the token's user, as MLflow sent it
    assert [e.action for e in reg.audit("fraud-v2")][-4:] == [
        "tags.set", "tags.delete", "tags.delete", "model.rename"]
    reg.close()


TRAIN = textwrap.dedent("""
    import mlflow, mlflow.pyfunc, mlflow.sklearn
    import numpy as np
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
""")


def test_a_script_written_the_mlflow_way_runs_unchanged(mlflow_client: MlflowRunner,
                                                        tmp_path: Path) -> None:
    """log_model, register_model on runs:/, alias, search, load by alias and stage, Staging;
    then Production under an approval policy: refused, approved in Modelyard, served."""
    result = mlflow_client(TRAIN + textwrap.dedent("""
        mlflow.set_experiment("churn")
        with mlflow.start_run() as run:
            model = LogisticRegression(C=0.5).fit(X, y)
            mlflow.log_params({"C": 0.5})
            mlflow.log_metric("accuracy", float(model.score(X, y)))
            mlflow.sklearn.log_model(model, name="model", input_example=X[:2])
        version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")
        client = MlflowClient()
        client.set_registered_model_alias("churn", "champion", version.version)
        found = client.search_model_versions("name = 'churn'")
        client.transition_model_version_stage("churn", version.version, "Staging")
        by_alias = mlflow.pyfunc.load_model("models:/churn@champion").predict(X)
        by_stage = mlflow.pyfunc.load_model("models:/churn/Staging").predict(X)
        emit({"version": version.version, "run_id": run.info.run_id,
              "found": [[v.version, v.run_id] for v in found],
              "trained": model.predict(X).tolist(), "by_alias": by_alias.tolist(),
              "by_stage": by_stage.tolist(),
              "stage": client.get_model_version("churn", version.version).current_stage})
    """))
    assert result["version"] == "1" and result["stage"] == "Staging"
    assert result["found"] == [["1", result["run_id"]]]
    assert result["by_alias"] == result["by_stage"] == result["trained"]
    assert 0 < sum(result["trained"]) < 120  # a real classifier, not a constant

    server = mlflow_client.server
    reg = modelyard.connect(server.url, token=server.token)
    reg.set_policy("churn", approvals=1, reviewers=["rita"])
    version = reg.get_version("models:/churn@champion")
    assert version.lineage["run_id"] == result["run_id"] and version.created_by == "ana"
    refused = mlflow_client("""
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException
        try:
            MlflowClient().transition_model_version_stage("churn", "1", "Production")
            emit(None)
        except MlflowException as exc:
            emit([exc.error_code, exc.message])
    """)
    assert refused is not None and "modelyard request" in refused[1]
    assert reg.get_version("churn", 1).stage == "staging"

    request = reg.request_promotion("churn", 1, comment="beats the baseline")
    rita = modelyard.connect(server.url, token=_token(server, "rita"))
    rita.approve(request.id, comment="checked")
    rita.close()
    reg.close()
    served = mlflow_client(TRAIN + textwrap.dedent("""
        client = MlflowClient()
        latest = client.get_latest_versions("churn", stages=["Production"])
        emit({"latest": [v.version for v in latest],
              "predicted": mlflow.pyfunc.load_model("models:/churn/Production")
              .predict(X).tolist()})
    """))
    assert served == {"latest": ["1"], "predicted": result["trained"]}


def _token(server: LiveServer, user: str) -> str:
    """A token for a new reviewer ``user`` of the live server's registry."""
    with modelyard.connect(server.url, token=server.token) as admin:
        return admin.create_user(user, "reviewer")[1]
