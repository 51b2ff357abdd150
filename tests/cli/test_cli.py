"""The CLI end to end on the embedded default (SQLite + local store under MODELYARD_HOME)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELYARD_USER", "alice")
    monkeypatch.delenv("MODELYARD_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MODELYARD_STORE_URI", raising=False)
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> object:
        result = runner.invoke(app, list(args))
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return invoke


def _json(result: object) -> object:
    return json.loads(result.stdout)  # type: ignore[attr-defined]


def test_register_list_show_with_json(run, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    out = _json(run("register", "fraud", str(model_dir), "--param", "lr=0.1", "--metric",
                    "auc=0.91", "--tag", "team=risk", "--description", "first", "--alias",
                    "champion", "--json"))
    assert out["name"] == "fraud" and out["version"] == 1 and out["stage"] == "none"
    assert out["params"] == {"lr": 0.1} and out["metrics"] == {"auc": 0.91}
    assert out["tags"] == {"team": "risk"} and out["aliases"] == ["champion"]
    assert out["created_by"] == "alice" and out["digest"].startswith("blake3:")
    assert {"description", "created_at"} <= set(out)
    run("register", "fraud", str(model_dir), "--metric", "auc=0.95")
    listed = _json(run("versions", "list", "fraud", "--filter", "metrics.auc > 0.92", "--json"))
    assert [v["version"] for v in listed] == [2]
    shown = _json(run("versions", "show", "fraud", "@champion", "--json"))
    assert shown["version"] == 1
    models = _json(run("models", "list", "--json"))
    assert models[0]["name"] == "fraud" and models[0]["latest_version"] == 2
    table = run("versions", "list", "fraud").stdout  # type: ignore[attr-defined]
    assert "fraud" in table and "auc=0.95" in table.replace("\n", "")


def test_lifecycle_commands(run, model_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        run("register", "m", str(model_dir))
    run("policy", "set", "m", "--approvals", "0")  # lifecycle mechanics; approvals: governance/
    run("transition", "m", "1", "staging")
    run("transition", "m", "1", "production", "--comment", "ship it")
    run("transition", "m", "2", "staging")
    run("transition", "m", "2", "production")
    assert _json(run("versions", "show", "m", "1", "--json"))["stage"] == "archived"
    rolled = _json(run("rollback", "m", "--comment", "regression", "--json"))
    assert rolled["version"] == 1 and rolled["stage"] == "production"
    run("alias", "set", "m", "champion", "2")
    run("alias", "delete", "m", "champion")
    run("tag", "m", "2", "reviewed=yes")
    run("tag", "m", "owner=risk")
    run("describe", "m", "2", "the retrain")
    run("describe", "m", "fraud model")
    version = _json(run("versions", "show", "m", "2", "--json"))
    assert version["tags"] == {"reviewed": "yes"} and version["description"] == "the retrain"
    history = _json(run("history", "m", "--json"))
    assert history["production"] == 1
    assert "version.rollback" in [e["action"] for e in history["events"]]
    past = history["events"][7]["at"]  # v2 -> staging: after the policy and the direct marker
    then = _json(run("history", "m", "--at", past, "--json"))
    assert then["production"] == 1
    run("download", "models:/m/production", "-o", str(tmp_path / "out"))
    assert (tmp_path / "out" / "config.json").read_text() == '{"layers": 3}'
    assert "all objects intact" in run("verify").stdout  # type: ignore[attr-defined]
    run("versions", "delete", "m", "2")
    run("models", "create", "other", "--description", "later")
    run("models", "delete", "other")


@pytest.mark.parametrize(("args", "message"), [
    (("versions", "show", "ghost", "1"), "model 'ghost' not found"),
    (("register", "bad name", "."), "invalid model name"),
    (("register", "m", "/nonexistent/path"), "does not exist"),
    (("register", "m", ".", "--param", "novalue"), "malformed param"),
    (("versions", "search", "metrics.auc >="), "column"),
    (("transition", "m", "1", "production"), "not found"),
    (("history", "m", "--at", "yesterday"), "invalid time"),
])
def test_errors_are_one_line_with_nonzero_exit(run, args, message) -> None:  # type: ignore[no-untyped-def]
    result = run(*args, ok=False)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_installed_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "MODELYARD_HOME": str(tmp_path), "MODELYARD_USER": "bob"}
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", "versions", "show", "nope", "3"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: model 'nope' not found",
                                                  "hint: see 'modelyard models list'"]
    assert result.stdout == ""


def test_bad_registry_url_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "MODELYARD_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", "--registry",
         "postgresql://nobody@127.0.0.1:1/none", "models", "list"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 1
    assert "cannot connect to the registry database" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_rename_and_tag_delete(run, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    run("register", "fraud", str(model_dir), "--tag", "team=risk", "--tag", "tier=1",
        "--alias", "champion")
    run("tag", "fraud", "owner=ana", "domain=payments")
    tagged = _json(run("tag", "fraud", "1", "--delete", "team", "--delete", "tier", "--json"))
    assert (tagged["version"], tagged["tags"]) == (1, {})
    out = run("tag", "fraud", "--delete", "owner")
    assert out.stdout.strip() == "removed tag owner of fraud"  # type: ignore[attr-defined]

    missing = run("tag", "fraud", "--delete", "domian", ok=False)
    assert missing.exit_code == 1  # type: ignore[attr-defined]
    assert missing.stderr.strip().splitlines() == [  # type: ignore[attr-defined]
        "error: tag 'domian' of model 'fraud' not found",
        "hint: did you mean 'domain'? (its tags: domain)"]
    both = run("tag", "fraud", "a=b", "--delete", "domain", "--json", ok=False)
    assert json.loads(both.stderr)["error"]["code"] == "invalid_input"  # type: ignore[attr-defined]
    assert run("tag", "fraud", ok=False).exit_code == 1  # type: ignore[attr-defined]

    renamed = _json(run("models", "rename", "fraud", "risk", "--json"))
    assert (renamed["name"], renamed["tags"], renamed["aliases"]) == (
        "risk", {"domain": "payments"}, {"champion": 1})
    again = run("models", "rename", "risk", "fraud-v2")
    assert "use models:/fraud-v2/..." in again.stdout  # type: ignore[attr-defined]
    assert _json(run("versions", "show", "fraud-v2", "@champion", "--json"))["name"] == "fraud-v2"
    actions = [e["action"] for e in _json(run("audit", "fraud-v2", "--json"))]
    assert actions[-3:] == ["tags.delete", "model.rename", "model.rename"]
    taken = run("models", "rename", "fraud-v2", "fraud-v2", "--json", ok=False)
    assert json.loads(taken.stderr)["error"]["code"] == "already_exists"  # type: ignore[attr-defined]
    gone = run("models", "show", "fraud", ok=False)
    assert "model 'fraud' not found" in gone.stderr  # type: ignore[attr-defined]


def test_metrics_from_the_shell_take_nan_and_inf(run, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    out = _json(run("register", "fraud", str(model_dir), "--metric", "loss=nan",
                    "--metric", "top=inf", "--metric", "auc=9.1e-1", "--json"))
    assert math.isnan(out["metrics"]["loss"])
    assert (out["metrics"]["top"], out["metrics"]["auc"]) == (math.inf, 0.91)
    bad = run("register", "fraud", str(model_dir), "--metric", "auc=high", ok=False)
    assert bad.stderr.strip().splitlines() == [  # type: ignore[attr-defined]
        "error: metric 'auc' must be a number, got 'high'",
        "hint: e.g. --metric auc=0.91 (nan and inf are numbers too)"]
    assert [v["version"] for v in _json(run("versions", "list", "fraud", "--json"))] == [1]
