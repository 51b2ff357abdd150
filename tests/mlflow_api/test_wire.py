"""MLflow's wire on the in-process app: record shapes, error codes and statuses, search,
paging, artifacts, stages under the registry's policies, and auditing as the token's user."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modelyard.domain.principal import Role
from modelyard.services.registry import Registry
from server.conftest import Served, bearer

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def call(served: Served, method: str, path: str, body: dict[str, Any] | None = None,
         token: str | None = None, prefix: str = API) -> httpx.Response:
    headers = bearer(token) if token else None
    if method == "GET":
        return served.client.get(prefix + path, params=body, headers=headers)
    return served.client.request(method, prefix + path, json=body, headers=headers)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    return str(body["message"])


def registry(served: Served) -> Registry:
    return Registry(served.backend.db, served.backend.store, user="ana")


def logged_run(served: Served, files: dict[str, bytes], experiment: str = "0",
               params: dict[str, str] | None = None) -> str:
    """A run (params, one metric) whose files were uploaded through the proxy."""
    run = ok(call(served, "POST", "/runs/create", {"experiment_id": experiment}))["run"]
    run_id, location = run["info"]["run_id"], run["info"]["artifact_uri"]
    ok(call(served, "POST", "/runs/log-batch", {
        "run_id": run_id, "params": [{"key": k, "value": v} for k, v in (params or {}).items()],
        "metrics": [{"key": "auc", "value": 0.91, "step": 0, "timestamp": 1}]}))
    base = location.removeprefix("mlflow-artifacts:/")
    for path, data in files.items():
        assert served.client.put(f"{ARTIFACTS}/{base}/{path}", content=data).status_code == 200
    return str(run_id)


MODEL_FILES = {"model/MLmodel": b"flavors: {}\n", "model/data/weights.bin": b"w" * 5000}


def test_registered_model_records_have_mlflow_shapes(served: Served) -> None:
    made = ok(call(served, "POST", "/registered-models/create", {
        "name": "fraud", "description": "scores", "tags": [{"key": "team", "value": "risk"}]}))
    model = made["registered_model"]
    assert model["name"] == "fraud" and model["user_id"] == "ana"
    assert isinstance(model["creation_timestamp"], int) and model["creation_timestamp"] > 10**12
    assert model["tags"] == [{"key": "team", "value": "risk"}]
    again = call(served, "POST", "/registered-models/create", {"name": "fraud"})
    refused(again, 400, "RESOURCE_ALREADY_EXISTS")
    got = ok(call(served, "GET", "/registered-models/get", {"name": "fraud"}))
    assert got["registered_model"]["description"] == "scores"
    ok(call(served, "PATCH", "/registered-models/update", {"name": "fraud",
                                                            "description": "new"}))
    twin = ok(call(served, "GET", "/registered-models/get", {"name": "fraud"},
                   prefix="/ajax-api/2.0/mlflow"))
    assert twin["registered_model"]["description"] == "new"


def test_errors_carry_mlflow_codes_and_statuses(served: Served) -> None:
    refused(call(served, "GET", "/registered-models/get", {"name": "nope"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
    refused(call(served, "GET", "/registered-models/get", {}), 400, "INVALID_PARAMETER_VALUE")
    refused(call(served, "GET", "/model-versions/get", {"name": "m", "version": "two"}), 400,
            "INVALID_PARAMETER_VALUE")
    refused(call(served, "GET", "/no-such-thing"), 404, "ENDPOINT_NOT_FOUND")
    refused(call(served, "DELETE", "/registered-models/search"), 404, "ENDPOINT_NOT_FOUND")
    refused(call(served, "GET", "/x", prefix="/api/2.0/mlflow-artifacts"), 404,
            "ENDPOINT_NOT_FOUND")
    bad_json = served.client.post(API + "/registered-models/create", content=b"{nope",
                                  headers={"content-type": "application/json"})
    refused(bad_json, 400, "INVALID_PARAMETER_VALUE")
    wrong_type = call(served, "POST", "/registered-models/create", {"name": 7})
    refused(wrong_type, 400, "INVALID_PARAMETER_VALUE")
    message = refused(call(served, "POST", "/runs/delete-tag", {"run_id": "r", "key": "k"}),
                      501, "NOT_IMPLEMENTED")
    assert "deleting a run's tag" in message


def test_rename_and_tag_deletion(served: Served) -> None:
    ok(call(served, "POST", "/registered-models/create", {"name": "fraud", "tags": [
        {"key": "team", "value": "risk"}, {"key": "tier", "value": "1"}]}))
    run_id = logged_run(served, MODEL_FILES)
    ok(call(served, "POST", "/model-versions/create", {
        "name": "fraud", "source": f"runs:/{run_id}/model", "run_id": run_id,
        "tags": [{"key": "owner", "value": "ana"}]}))
    ok(call(served, "POST", "/registered-models/alias",
            {"name": "fraud", "alias": "champion", "version": "1"}))

    ok(call(served, "DELETE", "/registered-models/delete-tag", {"name": "fraud", "key": "team"}))
    ok(call(served, "DELETE", "/registered-models/delete-tag", {"name": "fraud", "key": "team"}))
    ok(call(served, "DELETE", "/model-versions/delete-tag",
            {"name": "fraud", "version": "1", "key": "owner"}))
    refused(call(served, "DELETE", "/model-versions/delete-tag",
                 {"name": "fraud", "version": "7", "key": "owner"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
    refused(call(served, "DELETE", "/registered-models/delete-tag", {"name": "nope", "key": "k"}),
            404, "RESOURCE_DOES_NOT_EXIST")
    refused(call(served, "DELETE", "/registered-models/delete-tag", {"name": "fraud"}), 400,
            "INVALID_PARAMETER_VALUE")

    renamed = ok(call(served, "POST", "/registered-models/rename",
                      {"name": "fraud", "new_name": "risk"}))["registered_model"]
    assert (renamed["name"], renamed["tags"], renamed["aliases"]) == (
        "risk", [{"key": "tier", "value": "1"}], [{"alias": "champion", "version": "1"}])
    assert [v["name"] for v in renamed["latest_versions"]] == ["risk"]
    version = ok(call(served, "GET", "/registered-models/alias",
                      {"name": "risk", "alias": "champion"}))["model_version"]
    assert ("tags" not in version or version["tags"] == []) and version["run_id"] == run_id
    refused(call(served, "GET", "/registered-models/get", {"name": "fraud"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
    ok(call(served, "POST", "/registered-models/create", {"name": "fraud"}))  # free again
    refused(call(served, "POST", "/registered-models/rename",
                 {"name": "risk", "new_name": "fraud"}), 400, "RESOURCE_ALREADY_EXISTS")
    refused(call(served, "POST", "/registered-models/rename",
                 {"name": "risk", "new_name": "no good"}), 400, "INVALID_PARAMETER_VALUE")
    carol = served.token_for("carol", Role.CONTRIBUTOR)
    refused(call(served, "POST", "/registered-models/rename",
                 {"name": "risk", "new_name": "other"}, token=carol), 403, "PERMISSION_DENIED")
    ok(call(served, "DELETE", "/registered-models/delete-tag", {"name": "risk", "key": "tier"},
            token=carol))

    events = list(registry(served).audit("risk"))
    assert [e.action for e in events if e.action.startswith(("tags.", "model."))] == [
        "model.create", "tags.delete", "tags.delete", "model.rename", "tags.delete"]
    assert events[-1].actor == "carol"
    assert registry(served).verify_audit().ok


def test_tokens_and_roles_apply_and_refusals_are_audited(served: Served) -> None:
    anonymous = served.client.post(API + "/registered-models/create", json={"name": "m"},
                                   headers={"Authorization": ""})
    refused(anonymous, 401, "UNAUTHENTICATED")
    viewer = served.token_for("vic", Role.VIEWER)
    refused(call(served, "POST", "/registered-models/create", {"name": "m"}, token=viewer),
            403, "PERMISSION_DENIED")
    ok(call(served, "GET", "/registered-models/search", {}, token=viewer))
    denied = [e for e in registry(served).audit() if e.action == "access.denied"]
    assert denied[-1].after is not None
    assert denied[-1].after["user"] == "vic"
    assert denied[-1].after["operation"] == "mlflow.create_registered_model"
    assert len(denied) == 2  # the anonymous attempt too; the viewer's read is no refusal


def test_model_search_filters_orders_and_pages(served: Served) -> None:
    for name, team in (("alpha", "risk"), ("beta", "ops"), ("gamma", "risk")):
        ok(call(served, "POST", "/registered-models/create",
                {"name": name, "tags": [{"key": "team", "value": team}]}))
    ok(call(served, "POST", "/registered-models/set-tag",
            {"name": "beta", "key": "mlflow.prompt.is_prompt", "value": "true"}))

    def names(**body: Any) -> list[str]:
        found = ok(call(served, "GET", "/registered-models/search", body))
        return [m["name"] for m in found.get("registered_models", [])]

    # The filter every MLflow client appends: a model without the tag matches it.
    assert names(filter="tags.`mlflow.prompt.is_prompt` != 'true'") == ["alpha", "gamma"]
    assert names(filter="tags.team = 'risk' AND name LIKE '%a'") == ["alpha", "gamma"]
    assert names(filter="name ILIKE 'BE%'") == ["beta"]
    assert names(filter="name = 'gamma'") == ["gamma"]
    assert names(order_by=["name DESC"]) == ["gamma", "beta", "alpha"]
    seen, token = [], None
    while True:
        body = ok(call(served, "GET", "/registered-models/search",
                       {"max_results": 1, **({"page_token": token} if token else {})}))
        seen += [m["name"] for m in body["registered_models"]]
        token = body.get("next_page_token")
        if token is None:
            break
        if len(seen) == 1:
            ok(call(served, "POST", "/registered-models/create", {"name": "aaa-late"}))
    assert seen == ["alpha", "beta", "gamma"]  # keyset: an insert before the cursor is skipped
    refused(call(served, "GET", "/registered-models/search", {"page_token": "garbage"}), 400,
            "INVALID_PARAMETER_VALUE")
    refused(call(served, "GET", "/registered-models/search", {"filter": "name = 'a' OR x"}),
            400, "INVALID_PARAMETER_VALUE")
    refused(call(served, "GET", "/registered-models/search", {"filter": "owner = 'x'"}), 400,
            "INVALID_PARAMETER_VALUE")


def test_versions_from_run_files_download_verified(served: Served) -> None:
    run_id = logged_run(served, MODEL_FILES, params={"C": "1.0"})
    created = ok(call(served, "POST", "/model-versions/create", {
        "name": "fraud", "source": f"runs:/{run_id}/model", "run_id": run_id,
        "tags": [{"key": "stage", "value": "candidate"}]}))["model_version"]
    assert created["version"] == "1" and created["current_stage"] == "None"
    assert created["run_id"] == run_id and created["status"] == "READY"
    version = registry(served).get_version("fraud", 1)
    assert version.params == {"C": "1.0"} and version.metrics == {"auc": 0.91}
    assert version.file_count == 2 and version.artifact_kind == "dir"
    uri = ok(call(served, "GET", "/model-versions/get-download-uri",
                  {"name": "fraud", "version": "1"}))["artifact_uri"]
    path = uri.removeprefix("mlflow-artifacts:/")
    listed = ok(served.client.get(ARTIFACTS, params={"path": path}))["files"]
    assert listed == [{"path": "MLmodel", "is_dir": False, "file_size": 12},
                      {"path": "data", "is_dir": True}]
    body = served.client.get(f"{ARTIFACTS}/{path}/data/weights.bin")
    assert body.status_code == 200 and body.content == MODEL_FILES["model/data/weights.bin"]
    # The same files by their location (what the client sends for runs:/ with an MLmodel).
    run = ok(call(served, "GET", "/runs/get", {"run_id": run_id}))["run"]
    again = ok(call(served, "POST", "/model-versions/create", {
        "name": "fraud", "source": run["info"]["artifact_uri"] + "/model",
        "run_id": run_id}))["model_version"]
    assert registry(served).get_version("fraud", int(again["version"])).digest == (
        version.digest)
    refused(call(served, "POST", "/model-versions/create",
                 {"name": "fraud", "source": "s3://bucket/model"}), 400,
            "INVALID_PARAMETER_VALUE")
    refused(call(served, "POST", "/model-versions/create",
                 {"name": "fraud", "source": f"runs:/{run_id}/nothing-here"}), 404,
            "RESOURCE_DOES_NOT_EXIST")
    refused(served.client.get(f"{ARTIFACTS}/{path}/missing.bin"), 404,
            "RESOURCE_DOES_NOT_EXIST")


def test_version_search_uses_mlflow_grammar(served: Served) -> None:
    run_id = logged_run(served, MODEL_FILES)
    for n in range(3):
        ok(call(served, "POST", "/model-versions/create", {
            "name": "fraud", "source": f"runs:/{run_id}/model",
            "tags": [{"key": "n", "value": str(n)}]}))

    def versions(text: str, **more: Any) -> list[str]:
        found = ok(call(served, "GET", "/model-versions/search", {"filter": text, **more}))
        return [v["version"] for v in found.get("model_versions", [])]

    assert versions("name='fraud'") == ["3", "2", "1"]  # newest change first, as MLflow
    assert versions("name='fraud' AND version_number >= 2",
                    order_by=["version_number ASC"]) == ["2", "3"]
    assert versions(f"run_id IN ('{run_id}', 'other')", order_by=["version_number"]) == [
        "1", "2", "3"]
    assert versions("tags.n = '1'") == ["2"]
    assert versions("source_path LIKE 'runs:/%'", max_results=1) == ["3"]
    assert versions("name = 'unknown'") == []


def test_stages_aliases_and_the_approval_policy(served: Served) -> None:
    run_id = logged_run(served, MODEL_FILES)
    for _ in range(2):
        ok(call(served, "POST", "/model-versions/create",
                {"name": "fraud", "source": f"runs:/{run_id}/model"}))
    moved = ok(call(served, "POST", "/model-versions/transition-stage",
                    {"name": "fraud", "version": "1", "stage": "Staging"}))
    assert moved["model_version"]["current_stage"] == "Staging"
    message = refused(call(served, "POST", "/model-versions/transition-stage",
                           {"name": "fraud", "version": "1", "stage": "Production"}),
                      403, "PERMISSION_DENIED")
    assert "modelyard request fraud 1" in message
    refused(call(served, "POST", "/model-versions/transition-stage",
                 {"name": "fraud", "version": "2", "stage": "Production"}), 409,
            "RESOURCE_CONFLICT")  # none -> production is not in the stage table
    registry(served).set_policy("fraud", approvals=0)
    ok(call(served, "POST", "/model-versions/transition-stage",
            {"name": "fraud", "version": "1", "stage": "production"}))
    ok(call(served, "POST", "/model-versions/transition-stage",
            {"name": "fraud", "version": "2", "stage": "Staging",
             "archive_existing_versions": True}))
    latest = ok(call(served, "POST", "/registered-models/get-latest-versions",
                     {"name": "fraud", "stages": ["Production", "Staging"]}))
    assert [(v["version"], v["current_stage"]) for v in latest["model_versions"]] == [
        ("1", "Production"), ("2", "Staging")]
    ok(call(served, "POST", "/registered-models/alias",
            {"name": "fraud", "alias": "champion", "version": "1"}))
    by_alias = ok(call(served, "GET", "/registered-models/alias",
                       {"name": "fraud", "alias": "champion"}))["model_version"]
    assert by_alias["version"] == "1" and by_alias["aliases"] == ["champion"]
    model = ok(call(served, "GET", "/registered-models/get", {"name": "fraud"}))
    assert model["registered_model"]["aliases"] == [{"alias": "champion", "version": "1"}]
    ok(call(served, "DELETE", "/registered-models/alias", {"name": "fraud", "alias": "champion"}))
    refused(call(served, "GET", "/registered-models/alias",
                 {"name": "fraud", "alias": "champion"}), 404, "RESOURCE_DOES_NOT_EXIST")
    refused(call(served, "POST", "/registered-models/alias",
                 {"name": "fraud", "alias": "latest", "version": "1"}), 400,
            "INVALID_PARAMETER_VALUE")


def test_changes_are_audited_as_the_tokens_user(served: Served) -> None:
    carol = served.token_for("carol", Role.CONTRIBUTOR)
    ok(call(served, "POST", "/registered-models/create", {"name": "fraud"}, token=carol))
    ok(call(served, "POST", "/registered-models/set-tag",
            {"name": "fraud", "key": "k", "value": "v"}, token=carol))
    events = registry(served).audit("fraud")
    assert [(e.action, e.actor) for e in events] == [("model.create", "carol"),
                                                     ("tags.set", "carol")]
    refused(call(served, "DELETE", "/registered-models/delete", {"name": "fraud"},
                 token=carol), 403, "PERMISSION_DENIED")  # deletion is an admin's


def test_runs_log_batch_history_and_run_rules(served: Served) -> None:
    run_id = ok(call(served, "POST", "/runs/create", {
        "experiment_id": "0", "run_name": "train",
        "tags": [{"key": "mlflow.user", "value": "someone"}]}))["run"]["info"]["run_id"]
    ok(call(served, "POST", "/runs/log-batch", {"run_id": run_id, "metrics": [
        {"key": "loss", "value": 0.5, "step": 0, "timestamp": 1},
        {"key": "loss", "value": 0.25, "step": 1, "timestamp": 2},
        {"key": "acc", "value": "Infinity", "step": 1, "timestamp": 2}],
        "params": [{"key": "lr", "value": "0.1"}]}))
    refused(call(served, "POST", "/runs/log-parameter",
                 {"run_id": run_id, "key": "lr", "value": "0.2"}), 400,
            "INVALID_PARAMETER_VALUE")  # params are set once, as in MLflow
    history = ok(call(served, "GET", "/metrics/get-history",
                      {"run_id": run_id, "metric_key": "loss"}))["metrics"]
    assert [(m["step"], m["value"]) for m in history] == [(0, 0.5), (1, 0.25)]
    run = ok(call(served, "GET", "/runs/get", {"run_id": run_id}))["run"]
    assert run["info"]["run_name"] == "train" and run["info"]["status"] == "RUNNING"
    assert {m["key"]: m["value"] for m in run["data"]["metrics"]} == {"acc": "Infinity",
                                                                     "loss": 0.25}
    ok(call(served, "POST", "/runs/log-metric", {"run_id": run_id, "key": "acc",
                                                 "value": "NaN", "step": 3}))
    diverged = ok(call(served, "GET", "/metrics/get-history",
                       {"run_id": run_id, "metric_key": "acc"}))["metrics"]
    assert [m["value"] for m in diverged] == ["Infinity", "NaN"]  # protobuf JSON's spelling
    ended = ok(call(served, "POST", "/runs/update", {"run_id": run_id, "status": "FINISHED",
                                                     "end_time": 5}))["run_info"]
    assert ended["status"] == "FINISHED" and isinstance(ended["end_time"], int)
    refused(call(served, "POST", "/runs/log-batch", {"run_id": run_id, "metrics": [
        {"key": "loss", "value": 1, "step": 2}]}), 409, "RESOURCE_CONFLICT")
    found = ok(call(served, "POST", "/runs/search", {
        "experiment_ids": ["0"], "filter": "params.lr = '0.1' AND metrics.loss < 0.3"}))
    assert [r["info"]["run_id"] for r in found["runs"]] == [run_id]
    exp = ok(call(served, "POST", "/experiments/create", {"name": "fraud"}))["experiment_id"]
    assert exp == "fraud"
    got = ok(call(served, "GET", "/experiments/get-by-name", {"experiment_name": "fraud"}))
    assert got["experiment"]["artifact_location"] == "mlflow-artifacts:/fraud"
    refused(call(served, "POST", "/experiments/delete", {"experiment_id": "fraud"}), 501,
            "NOT_IMPLEMENTED")


def test_logged_models_hold_files_and_register(served: Served) -> None:
    source = ok(call(served, "POST", "/runs/create", {"experiment_id": "0"}))["run"]
    source_id = source["info"]["run_id"]
    ok(call(served, "POST", "/runs/log-parameter", {"run_id": source_id, "key": "C",
                                                    "value": "2"}))
    model = ok(call(served, "POST", "/logged-models", {
        "experiment_id": "0", "name": "model", "source_run_id": source_id,
        "params": [{"key": "C", "value": "2"}],
        "tags": [{"key": "flavor", "value": "sklearn"}]}))["model"]
    model_id = model["info"]["model_id"]
    assert model_id.startswith("m-") and model["info"]["status"] == "LOGGED_MODEL_PENDING"
    assert model["info"]["tags"] == [{"key": "flavor", "value": "sklearn"}]  # no bookkeeping
    base = model["info"]["artifact_uri"].removeprefix("mlflow-artifacts:/")
    assert served.client.put(f"{ARTIFACTS}/{base}/MLmodel", content=b"m").status_code == 200
    ok(call(served, "POST", f"/logged-models/{model_id}/params",
            {"params": [{"key": "D", "value": "3"}]}))
    ok(call(served, "POST", "/runs/outputs",
            {"run_id": source_id, "models": [{"model_id": model_id, "step": 0}]}))
    done = ok(call(served, "PATCH", f"/logged-models/{model_id}",
                   {"model_id": model_id, "status": "LOGGED_MODEL_READY"}))["model"]
    assert done["info"]["status"] == "LOGGED_MODEL_READY"
    assert {p["key"] for p in done["data"]["params"]} == {"C", "D"}
    found = ok(call(served, "POST", "/logged-models/search",
                    {"experiment_ids": ["0"], "filter": "name = 'model'"}))["models"]
    assert [m["info"]["model_id"] for m in found] == [model_id]
    runs = ok(call(served, "POST", "/runs/search", {"experiment_ids": ["0"]}))["runs"]
    assert [r["info"]["run_id"] for r in runs] == [source_id]  # a logged model is no run
    outputs = ok(call(served, "GET", "/runs/get", {"run_id": source_id}))["run"]["outputs"]
    assert outputs == {"model_outputs": [{"model_id": model_id, "step": 0}]}
    version = ok(call(served, "POST", "/model-versions/create", {
        "name": "fraud", "source": f"models:/{model_id}", "run_id": source_id,
        "model_id": model_id}))["model_version"]
    assert version["model_id"] == model_id and version["source"] == f"models:/{model_id}"
    assert registry(served).get_version("fraud", 1).params == {"C": "2"}
    tagged = ok(call(served, "PATCH", f"/logged-models/{model_id}/tags",
                     {"tags": [{"key": "mlflow.modelVersions", "value": "[]"}]}))["model"]
    assert {"key": "mlflow.modelVersions", "value": "[]"} in tagged["info"]["tags"]
    refused(call(served, "GET", "/logged-models/m-" + "0" * 32), 404,
            "RESOURCE_DOES_NOT_EXIST")
    refused(call(served, "GET", f"/logged-models/m-{source_id}"), 404,
            "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("path", ["0/../etc/artifacts/x", "_models/fraud/1/../../x",
                                  "0/" + "a" * 32 + "/artifacts/..%2F..%2Fx"])
def test_artifact_paths_are_checked(served: Served, path: str) -> None:
    response = served.client.get(f"{ARTIFACTS}/{path}")
    assert response.status_code in (400, 404), response.text
    assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE",
                                             "RESOURCE_DOES_NOT_EXIST")
