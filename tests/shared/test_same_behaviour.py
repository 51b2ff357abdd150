"""The embedded registry and the remote client behave alike: same results, same errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from modelyard.domain.entities import ModelVersion
from modelyard.domain.paging import Page
from modelyard.errors import (
    AlreadyExists,
    ApprovalRequired,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from modelyard.services.registry import RegistryApi


def test_register_read_and_download(api: RegistryApi, model_dir: Path, tmp_path: Path) -> None:
    first = api.register("fraud", model_dir, params={"lr": 0.1}, metrics={"auc": 0.91},
                         tags={"team": "risk"}, aliases=["champion"], description="first")
    assert isinstance(first, ModelVersion)
    assert (first.version, first.file_count, first.aliases, first.created_by) == (
        1, 3, ["champion"], "ana")
    assert api.get_version("models:/fraud@champion") == first
    assert api.get_version("fraud", "latest").digest == first.digest
    out = api.download("models:/fraud/1", tmp_path / "out")
    assert (out / "sub" / "vocab.txt").read_text() == "a\nb\nc\n"
    again = api.register("fraud", model_dir)
    assert (again.version, again.digest) == (2, first.digest)  # same content, next number
    found = api.search_versions("metrics.auc > 0.9", name="fraud")
    assert [v.version for v in found] == [1]
    assert api.get_model("fraud").latest_version == 2


def test_errors_keep_their_class_message_and_hint(api: RegistryApi, model_dir: Path) -> None:
    with pytest.raises(NotFound, match="model 'ghost' not found") as missing:
        api.get_version("ghost", 1)
    assert missing.value.hint
    with pytest.raises(InvalidInput, match="invalid model name"):
        api.register("bad name", model_dir)
    api.register("m", model_dir)
    with pytest.raises(InvalidTransition):
        api.transition("m", 1, "production")  # none -> production skips staging
    with pytest.raises(InvalidInput, match="column"):
        api.search_versions("metrics.auc >=")


def test_promotion_needs_approval_on_both_faces(api: RegistryApi, model_dir: Path) -> None:
    api.register("m", model_dir)
    api.transition("m", 1, "staging", comment="ready")
    with pytest.raises(ApprovalRequired):
        api.transition("m", 1, "production")
    api.set_policy("m", approvals=0)
    promoted = api.transition("m", 1, "production")
    assert promoted.stage == "production"
    assert api.get_version("models:/m/production").version == 1
    actions = [e.action for e in api.audit("m")]
    assert actions[:2] == ["model.create", "version.register"] and "promotion.direct" in actions
    assert api.verify_audit().ok


def test_lists_page_the_same_way(api: RegistryApi, model_dir: Path) -> None:
    for name in ("a", "b", "c", "d", "e"):
        api.create_model(name)
    seen: list[str] = []
    token = None
    while True:
        page = api.list_models(max_results=2, page_token=token)
        assert isinstance(page, Page) and len(page) <= 2
        seen += [m.name for m in page]
        token = page.next_page_token
        if token is None:
            break
    assert seen == ["a", "b", "c", "d", "e"]
    with pytest.raises(InvalidInput):
        api.list_models(page_token="not-a-token")
    for _ in range(3):
        api.register("e", model_dir)
    newest = api.list_versions("e", descending=True, max_results=2)
    assert [v.version for v in newest] == [3, 2]
    assert [v.version for v in api.list_versions(
        "e", descending=True, page_token=newest.next_page_token)] == [1]


def test_a_run_its_artifact_and_a_version_made_from_it(
    api: RegistryApi, model_dir: Path, tmp_path: Path
) -> None:
    api.create_experiment("churn")
    run = api.create_run("churn", name="baseline")
    api.log_params(run.run_id, {"depth": 4})
    for step, loss in enumerate([0.9, 0.5, 0.3]):
        api.log_metrics(run.run_id, {"loss": loss}, step=step)
    data = tmp_path / "train.csv"
    data.write_text("x,y\n1,0\n")
    api.log_run_input(run.run_id, data)
    artifact = api.log_run_artifact(run.run_id, model_dir, artifact_path="model")
    api.end_run(run.run_id)
    assert [p.value for p in api.metric_history(run.run_id, "loss")] == [0.9, 0.5, 0.3]
    version = api.register("churn", f"runs:/{run.run_id}/model")
    assert version.digest == artifact.digest
    assert version.lineage["run_id"] == run.run_id and version.params == {"depth": 4}
    assert [d["source"] for d in version.lineage["datasets"]] == [str(data)]


def test_nan_and_infinite_metrics_travel_both_ways(api: RegistryApi, model_dir: Path) -> None:
    run = api.create_run("diverged")
    api.log_metrics(run.run_id, {"loss": math.nan, "grad": math.inf})
    version = api.register("d", model_dir, run=run.run_id, metrics={"low": -math.inf})
    for found in (version, api.get_version("d", 1), api.search_versions("name = 'd'")[0]):
        assert math.isnan(found.metrics["loss"]) and math.isnan(found.lineage["metrics"]["loss"])
        assert (found.metrics["grad"], found.metrics["low"]) == (math.inf, -math.inf)
    assert math.isnan(api.metric_history(run.run_id, "loss")[0].value)
    assert api.verify_audit().ok


def test_datasets_register_and_come_back_verified(api: RegistryApi, tmp_path: Path) -> None:
    data = tmp_path / "customers.csv"
    data.write_text("id\n1\n2\n")
    registered = api.register_dataset("customers", data, tags={"pii": "no"})
    assert (registered.version, registered.artifact_name) == (1, "customers.csv")
    assert api.get_dataset("datasets:/customers/1") == registered
    assert api.resolve_dataset_input(data)["version"] == 1
    out = api.download_dataset("datasets:/customers/1", tmp_path / "out")
    assert out.read_text() == "id\n1\n2\n"


def test_users_and_tokens_are_managed_the_same_way(api: RegistryApi) -> None:
    user, token = api.create_user("vic", "viewer")
    assert (user.name, user.role.value, user.disabled) == ("vic", "viewer", False)
    assert token.startswith("myd_")
    assert "vic" in [u.name for u in api.list_users()]
    mine, secret = api.create_token("ci", user="vic")
    assert secret.startswith(f"myd_{mine.id}_") and mine.status.value == "active"
    assert api.revoke_token(mine.id).status.value == "revoked"
    assert api.set_role("vic", "reviewer").role.value == "reviewer"
    with pytest.raises(InvalidInput):
        api.create_user("modelyard", "admin")  # reserved for the registry itself


def test_aliases_tags_descriptions_and_deletion(api: RegistryApi, model_dir: Path) -> None:
    api.register("m", model_dir)
    api.register("m", model_dir, params={"lr": 0.2})
    assert api.set_alias("m", "champion", 2).aliases == ["champion"]
    api.set_tag("m", "owner", "risk", version=1)
    api.set_tags("m", {"team": "fraud"})
    api.set_description("m", "the fraud model")
    assert api.get_version("m", 1).tags == {"owner": "risk"}
    model = api.get_model("m")
    assert (model.tags, model.description, model.aliases) == (
        {"team": "fraud"}, "the fraud model", {"champion": 2})
    api.delete_alias("m", "champion")
    with pytest.raises(NotFound, match="alias @champion"):
        api.get_version("models:/m@champion")
    api.delete_version("m", 1)
    with pytest.raises(NotFound, match="deleted"):
        api.get_version("m", 1)
    assert [v.version for v in api.list_versions("m")] == [2]


def test_rename_and_tag_deletion(api: RegistryApi, model_dir: Path) -> None:
    api.register("m", model_dir, tags={"owner": "risk", "tier": "1"}, aliases=["champion"])
    api.set_tags("m", {"team": "fraud", "domain": "payments"})
    api.delete_tag("m", "team")
    api.delete_tags("m", ["owner", "tier"], version=1)
    with pytest.raises(NotFound, match="tag 'ownr' of model 'm'") as missing:
        api.delete_tag("m", "ownr")
    assert missing.value.hint
    api.delete_tag("m", "ownr", missing_ok=True)

    renamed = api.rename_model("m", "fraud")
    assert (renamed.name, renamed.tags, renamed.aliases) == (
        "fraud", {"domain": "payments"}, {"champion": 1})
    assert api.get_version("models:/fraud@champion").tags == {}
    with pytest.raises(NotFound, match="model 'm' not found"):
        api.get_model("m")
    with pytest.raises(AlreadyExists, match="'fraud' already exists"):
        api.rename_model("fraud", "fraud")
    assert [e.action for e in api.audit("fraud")] == [
        "model.create", "version.register", "alias.set", "tags.set", "tags.delete",
        "tags.delete", "model.rename"]
    assert api.verify_audit().ok


def test_history_rollback_lineage_and_diff(api: RegistryApi, model_dir: Path,
                                           tmp_path: Path) -> None:
    api.register("m", model_dir, params={"lr": 0.1}, metrics={"auc": 0.8})
    (model_dir / "extra.txt").write_text("more")
    api.register("m", model_dir, params={"lr": 0.2}, metrics={"auc": 0.9}, parent="m/1")
    api.create_model("unrelated")
    api.set_policy("m", approvals=0)
    for version in (1, 2):
        api.transition("m", version, "staging")
        api.transition("m", version, "production")
    state = api.history("m")
    assert state.production == 2 and state.stages[1] == "archived"
    back = api.rollback("m", comment="auc dropped in prod")
    assert (back.version, back.stage) == (1, "production")
    diff = api.diff("m", 1, 2)
    assert diff.params["changed"] == {"lr": {"from": 0.1, "to": 0.2}}
    assert diff.files["added"] == ["extra.txt"]
    lineage = api.lineage("m", 2)
    assert lineage.parent is not None and lineage.parent["version"] == 1
    dossier = api.dossier("m", 1)
    assert dossier["version"]["version"] == 1


def test_requests_are_rejected_and_cancelled_alike(api: RegistryApi, model_dir: Path) -> None:
    api.register("m", model_dir, metrics={"auc": 0.9})
    api.register("m", model_dir, metrics={"auc": 0.9})
    api.set_policy("m", approvals=1, allow_self_approval=True, gates=["metrics.auc >= 0"])
    for version in (1, 2):
        api.transition("m", version, "staging")
    first = api.request_promotion("m", 1, comment="please")
    assert first.status == "pending" and api.get_request(first.id) == first
    assert [r.id for r in api.list_requests("m", status="pending")] == [first.id]
    rejected = api.reject(first.id, comment="no metrics")
    assert rejected.status == "rejected"
    second = api.request_promotion("m", 2)
    assert api.cancel(second.id).status == "cancelled"
    policy = api.get_policy("m")
    assert (policy.approvals, policy.gates) == (1, ("metrics.auc >= 0",))
    assert api.verify_audit().ok


def test_an_admin_acting_for_someone_is_audited_with_both_names(
    api: RegistryApi, model_dir: Path
) -> None:
    api.register("m", model_dir, actor="bo")
    event = api.audit("m")[-1]
    assert (event.action, event.actor, event.via) == ("version.register", "bo", "ana")
    assert api.get_version("m", 1).created_by == "bo"
    with pytest.raises(InvalidInput, match="reserved"):
        api.set_tag("m", "x", "y", actor="modelyard")
