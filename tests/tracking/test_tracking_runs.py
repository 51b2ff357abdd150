"""Runs on real SQLite and PostgreSQL: logging, status, environment, search."""

from __future__ import annotations

from pathlib import Path

import pytest
from tracking_support import git, git_repo

import modelyard
from modelyard.errors import AlreadyExists, InvalidInput, InvalidTransition, NotFound
from modelyard.services.registry import Registry


def test_a_run_records_params_metric_history_tags_and_ends_finished(reg: Registry) -> None:
    with modelyard.start_run(experiment="fraud", name="gbm", registry=reg,
                             tags={"team": "risk"}) as run:
        run.log_params({"lr": 0.1, "max_depth": 6, "scale": 1.0, "kind": "1.5"})
        run.log_param("lr", 0.1)  # the same value again is fine
        run.log_metric("auc", 0.80, step=1)
        run.log_metric("auc", 0.91, step=10)
        run.log_metric("auc", 0.85, step=5)  # out of order: latest is by step, not by time
        run.log_metrics({"loss": 0.5, "f1": 0.7})
        run.log_metric("loss", 0.4)  # no step: the next one
        run.set_tag("note", "baseline")
        assert run.info.status == "running"
    found = reg.get_run(run.run_id)
    assert (found.experiment, found.name, found.status) == ("fraud", "gbm", "finished")
    assert found.end_time is not None and found.end_time >= found.start_time
    assert found.params == {"lr": 0.1, "max_depth": 6, "scale": 1.0, "kind": "1.5"}
    assert [type(found.params[k]) for k in ("max_depth", "scale", "kind")] == [int, float, str]
    assert found.metrics == {"auc": 0.91, "loss": 0.4, "f1": 0.7}
    assert found.tags == {"team": "risk", "note": "baseline"}
    assert found.created_by == "alice"
    history = reg.metric_history(run.run_id, "auc")
    assert [(p.step, p.value) for p in history] == [(1, 0.80), (5, 0.85), (10, 0.91)]
    assert [p.step for p in reg.metric_history(run.run_id, "loss")] == [0, 1]
    actions = [e.action for e in reg.audit()]
    assert actions[:3] == ["experiment.create", "run.start", "run.params"]
    assert "run.metrics" not in actions and actions[-1] == "run.end"  # points are their own record


def test_a_param_is_set_once_and_an_ended_run_is_closed(reg: Registry, tmp_path: Path) -> None:
    run = modelyard.start_run(experiment="e", registry=reg)
    run.log_param("lr", 0.1)
    with pytest.raises(InvalidInput, match=r"param 'lr' .* is already 0\.1"):
        run.log_param("lr", 0.2)
    with pytest.raises(InvalidInput, match="must be a number"):
        run.log_metric("auc", "high")  # type: ignore[arg-type]
    run.end()
    with pytest.raises(InvalidTransition, match="is finished"):
        run.log_metric("auc", 0.9)
    with pytest.raises(InvalidTransition):
        reg.end_run(run.run_id, "failed")
    late = tmp_path / "late.txt"
    late.write_text("too late")
    with pytest.raises(InvalidTransition):
        run.log_artifact(late)
    assert list(reg.store.iter_digests()) == []  # refused before anything was stored
    run.set_tag("reviewed", "yes")  # tags stay editable
    assert reg.get_run(run.run_id).tags == {"reviewed": "yes"}


def test_an_exception_in_the_block_marks_the_run_failed_and_propagates(reg: Registry) -> None:
    with pytest.raises(ZeroDivisionError), \
            modelyard.start_run(experiment="e", registry=reg) as run:
        run.log_metric("auc", 0.5)
        _ = 1 / 0
    found = reg.get_run(run.run_id)
    assert found.status == "failed" and found.metrics == {"auc": 0.5}
    assert [r.run_id for r in reg.list_runs(filter="status = 'failed'")] == [run.run_id]


def test_environment_records_git_commit_dirty_flag_python_and_packages(
    reg: Registry, tmp_path: Path
) -> None:
    repo = git_repo(tmp_path / "repo")
    with modelyard.start_run(experiment="e", registry=reg, cwd=repo) as clean:
        pass
    (repo / "train.py").write_text("print('changed')\n")
    with modelyard.start_run(experiment="e", registry=reg, cwd=repo) as dirty:
        pass
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    with modelyard.start_run(experiment="e", registry=reg, cwd=outside) as nowhere:
        pass
    first, second = reg.get_run(clean.run_id), reg.get_run(dirty.run_id)
    head = git(repo, "rev-parse", "HEAD")
    assert first.git is not None and second.git is not None
    assert first.git["commit"] == head == second.git["commit"] == first.git_commit
    assert Path(first.git["repo"]).resolve() == repo.resolve()
    assert (first.git["dirty"], second.git["dirty"]) == (False, True)
    assert reg.get_run(nowhere.run_id).git is None
    env = first.environment
    assert env["python"].count(".") == 2 and env["platform"] and env["user"]
    assert env["packages"]["sqlalchemy"] and "modelyard" in env["packages"]


def test_runs_search_uses_the_filter_language(reg: Registry) -> None:
    ids = {}
    for lr, auc, experiment in ((0.1, 0.91, "fraud"), (0.3, 0.85, "fraud"), (0.1, 0.95, "churn")):
        with modelyard.start_run(experiment=experiment, registry=reg) as run:
            run.log_params({"lr": lr})
            run.log_metric("auc", auc)
        ids[(experiment, lr)] = run.run_id
    search = reg.list_runs
    assert {r.run_id for r in search(filter="metrics.auc >= 0.9")} == {
        ids[("fraud", 0.1)], ids[("churn", 0.1)]}
    assert [r.run_id for r in search("fraud", filter="params.lr = 0.1")] == [ids[("fraud", 0.1)]]
    assert [r.run_id for r in search(filter="experiment = 'churn' and has(metrics.auc)")] == [
        ids[("churn", 0.1)]]
    assert len(search(experiment="fraud")) == 2 and search(experiment="nope") == []
    with pytest.raises(InvalidInput, match="did you mean 'metrics'"):
        search(filter="metric.auc > 1")
    experiments = {e.name: e.run_count for e in reg.list_experiments()}
    assert experiments == {"churn": 1, "fraud": 2}


def test_experiments_and_runs_not_found_or_duplicate(reg: Registry) -> None:
    reg.create_experiment("fraud", description="card fraud")
    assert reg.get_experiment("fraud").description == "card fraud"
    with pytest.raises(AlreadyExists):
        reg.create_experiment("fraud")
    with pytest.raises(NotFound, match="experiment 'ghost'"):
        reg.get_experiment("ghost")
    with pytest.raises(NotFound, match=r"run 0+ not found"):
        reg.get_run("0" * 32)
    with pytest.raises(InvalidInput, match="32 hex digits"):
        reg.get_run("nope")
    with pytest.raises(InvalidInput, match="invalid experiment name"):
        reg.create_run("no spaces please")


def test_artifacts_and_inputs_are_recorded_by_digest(
    reg: Registry, tmp_path: Path, model_dir: Path
) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    plot = tmp_path / "roc.png"
    plot.write_bytes(b"\x89PNG fake")
    with modelyard.start_run(experiment="e", registry=reg) as run:
        dataset = run.log_input(data)
        run.log_input(data)  # the same data twice is one input
        run.log_artifact(plot, "plots/roc.png")
        run.log_artifact(model_dir)
    found = reg.get_run(run.run_id)
    assert dataset["digest"].startswith("blake3:") and dataset["size"] == data.stat().st_size
    assert [d["digest"] for d in found.datasets] == [dataset["digest"]]
    assert {a.path: a.kind for a in found.artifacts} == {"model": "dir", "plots/roc.png": "file"}
    _, artifact = reg.run_artifact(f"runs:/{run.run_id}/plots/roc.png")
    assert reg.store.get_bytes(artifact.digest) == plot.read_bytes()
    with pytest.raises(NotFound, match="no artifact 'nope'"):
        reg.run_artifact(f"runs:/{run.run_id}/nope")
    filtered = reg.list_runs(filter=f"datasets = '{dataset['digest']}'")
    assert [r.run_id for r in filtered] == [run.run_id]
