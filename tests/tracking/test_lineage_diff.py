"""Lineage and diff on real SQLite and PostgreSQL (the ``reg`` fixture runs both)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tracking_support import git, git_repo

import modelyard
from modelyard.errors import InvalidInput, NotFound
from modelyard.services.registry import Registry

PACKAGES_2 = {"numpy": "0.0.1", "leftpad": "1.0"}


def _two_versions(reg: Registry, tmp_path: Path, model_dir: Path) -> dict[str, object]:
    """v1 registered from run 1's artifact; v2 from a folder with --run/--parent."""
    repo = git_repo(tmp_path / "repo")
    train, extra = tmp_path / "train.csv", tmp_path / "extra.csv"
    train.write_text("a,b\n1,2\n")
    extra.write_text("a,b\n3,4\n")
    registered = reg.register_dataset("transactions", train)
    with modelyard.start_run(experiment="fraud", name="first", registry=reg, cwd=repo) as run1:
        run1.log_params({"lr": 0.1, "max_depth": 6})
        run1.log_metrics({"auc": 0.90, "loss": 0.3})
        run1.log_input(train)
        run1.log_artifact(model_dir, "model")
        v1 = run1.register_model("fraud", description="from run 1")
    first_commit = git(repo, "rev-parse", "HEAD")
    second = tmp_path / "model2"
    shutil.copytree(model_dir, second)
    (second / "config.json").write_text('{"layers": 4}')
    (second / "sub" / "vocab.txt").unlink()
    (second / "notes.md").write_text("tuned\n")
    run2 = reg.create_run("fraud", name="second",
                          git={"repo": str(repo), "commit": "f" * 40, "dirty": False},
                          environment={"python": "3.12.1", "packages": PACKAGES_2})
    reg.log_params(run2.run_id, {"lr": 0.05, "max_depth": 6, "seed": 7})
    reg.log_metrics(run2.run_id, {"auc": 0.93, "loss": 0.3})
    reg.log_run_input(run2.run_id, train)
    reg.log_run_input(run2.run_id, extra)
    reg.end_run(run2.run_id)
    v2 = reg.register("fraud", second, run=run2.run_id, parent="fraud/1",
                      metrics={"loss": 0.25})
    return {"v1": v1, "v2": v2, "run1": run1.run_id, "run2": run2.run_id,
            "commit": first_commit, "dataset": registered, "train": train, "extra": extra}


def test_lineage_traces_run_experiment_params_data_code_environment_and_parent(
    reg: Registry, tmp_path: Path, model_dir: Path
) -> None:
    made = _two_versions(reg, tmp_path, model_dir)
    first = reg.lineage("fraud", 1)
    assert first.run is not None and first.run["run_id"] == made["run1"]
    assert first.run["name"] == "first" and first.run["status"] == "finished"
    assert first.experiment == "fraud"
    assert first.params == {"lr": 0.1, "max_depth": 6}
    assert first.metrics == {"auc": 0.90, "loss": 0.3}
    dataset = made["dataset"]
    assert first.datasets == [{"digest": dataset.digest, "size": dataset.size,  # type: ignore[attr-defined]
                               "file_count": 1, "source": str(made["train"]),
                               "name": "transactions", "version": 1}]
    assert first.git is not None and first.git["commit"] == made["commit"]
    assert first.git["dirty"] is False
    assert first.environment is not None and first.environment["package_count"] > 10
    assert first.parent is None
    assert first.descendants == [{"name": "fraud", "version": 2,
                                  "digest": made["v2"].digest}]  # type: ignore[attr-defined]
    assert first.model is None  # a plain folder: no flavor descriptor
    second = reg.lineage("models:/fraud/2")
    assert second.parent == {"name": "fraud", "version": 1,
                             "digest": made["v1"].digest}  # type: ignore[attr-defined]
    assert second.metrics == {"auc": 0.93, "loss": 0.25}  # given metrics win over the run's
    assert second.descendants == []
    assert reg.get_version("fraud", 1).lineage["run_id"] == made["run1"]
    assert [v.version for v in reg.search_versions(f"run_id = '{made['run2']}'")] == [2]


def test_diff_explains_params_metrics_datasets_code_packages_and_files(
    reg: Registry, tmp_path: Path, model_dir: Path
) -> None:
    made = _two_versions(reg, tmp_path, model_dir)
    diff = reg.diff("fraud", 1, 2)
    assert (diff.from_version, diff.to_version, diff.identical_content) == (1, 2, False)
    assert diff.params == {"added": {"seed": 7}, "removed": {},
                           "changed": {"lr": {"from": 0.1, "to": 0.05}}}
    assert diff.metrics["changed"]["auc"]["delta"] == pytest.approx(0.03)
    assert diff.metrics["changed"]["loss"]["delta"] == pytest.approx(-0.05)
    assert [d["source"] for d in diff.datasets["added"]] == [str(made["extra"])]
    assert diff.datasets["removed"] == [] and len(diff.datasets["unchanged"]) == 1
    assert diff.code == {"from": made["commit"], "to": "f" * 40, "changed": True}
    assert diff.packages["changed"]["numpy"]["to"] == "0.0.1"
    assert diff.packages["added"] == {"leftpad": "1.0"}
    assert "sqlalchemy" in diff.packages["removed"]
    assert diff.files == {"added": ["notes.md"], "removed": ["sub/vocab.txt"],
                          "changed": ["config.json"]}
    same = reg.diff("fraud", 2, 2)
    assert same.identical_content and same.files == {"added": [], "removed": [], "changed": []}
    assert same.params["changed"] == {} and same.code["changed"] is False


def test_diff_of_single_file_versions_compares_by_digest(reg: Registry, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(b"one")
    reg.register("clf", model)
    model.write_bytes(b"two")
    reg.register("clf", model)
    diff = reg.diff("clf", 1, "latest")
    assert diff.files == {"added": [], "removed": [], "changed": ["model.onnx"]}
    assert diff.code == {"from": None, "to": None, "changed": False}
    assert diff.packages == {"added": {}, "removed": {}, "changed": {}}


def test_register_refuses_unknown_runs_parents_and_mismatched_run(
    reg: Registry, model_dir: Path
) -> None:
    run = reg.create_run("e")
    with pytest.raises(NotFound, match=r"run 0+ not found"):
        reg.register("m", model_dir, run="0" * 32)
    with pytest.raises(NotFound, match="model 'ghost' not found"):
        reg.register("m", model_dir, parent="ghost/1")
    with pytest.raises(InvalidInput, match="invalid parent"):
        reg.register("m", model_dir, parent="ghost")
    with pytest.raises(NotFound, match="has no artifact 'model'"):
        reg.register("m", f"runs:/{run.run_id}/model")
    reg.log_run_artifact(run.run_id, model_dir)
    with pytest.raises(InvalidInput, match="belongs to run"):
        reg.register("m", f"runs:/{run.run_id}/model", run="1" * 32)
    assert reg.register("m", f"runs:/{run.run_id}/model").lineage["run_id"] == run.run_id
