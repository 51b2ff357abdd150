"""``experiments``, ``runs``, ``register --run/--parent``, ``lineage`` and ``diff`` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import modelyard
from modelyard.cli.main import app


@pytest.fixture
def cli(cli_home: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    return invoke


def _json(result: Any) -> Any:
    return json.loads(result.stdout)


def _log_run(tmp_path: Path, model_dir: Path, lr: float, auc: float) -> str:
    with modelyard.start_run(experiment="fraud", name=f"lr{lr}") as run:
        run.log_params({"lr": lr})
        run.log_metric("auc", auc, step=1)
        run.log_artifact(model_dir, "model")
    return run.run_id


def test_runs_experiments_register_lineage_and_diff(cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    model_dir: Path) -> None:
    first = _log_run(tmp_path, model_dir, 0.1, 0.90)
    (model_dir / "config.json").write_text('{"layers": 5}')
    second = _log_run(tmp_path, model_dir, 0.2, 0.94)

    experiments = _json(cli("experiments", "list", "--json"))
    assert [(e["name"], e["run_count"]) for e in experiments] == [("fraud", 2)]
    listed = _json(cli("runs", "list", "--experiment", "fraud", "--filter", "metrics.auc > 0.92",
                       "--json"))
    assert [r["run_id"] for r in listed] == [second]
    shown = _json(cli("runs", "show", first, "--json"))
    assert shown["params"] == {"lr": 0.1} and shown["status"] == "finished"
    assert shown["artifacts"][0]["path"] == "model"

    v1 = _json(cli("register", "fraud", f"runs:/{first}/model", "--json"))
    assert v1["lineage"]["run_id"] == first and v1["metrics"] == {"auc": 0.90}
    v2 = _json(cli("register", "fraud", str(model_dir), "--run", second, "--parent", "fraud/1",
                   "--json"))
    assert v2["lineage"]["parent"]["version"] == 1 and v2["params"] == {"lr": 0.2}

    lineage = _json(cli("lineage", "fraud", "1", "--json"))
    assert lineage["run"]["run_id"] == first and lineage["experiment"] == "fraud"
    assert lineage["descendants"] == [{"name": "fraud", "version": 2, "digest": v2["digest"]}]
    diff = _json(cli("diff", "fraud", "1", "latest", "--json"))
    assert diff["params"]["changed"] == {"lr": {"from": 0.1, "to": 0.2}}
    assert diff["metrics"]["changed"]["auc"]["delta"] == pytest.approx(0.04)
    assert diff["files"] == {"added": [], "removed": [], "changed": ["config.json"]}

    people = cli("lineage", "fraud", "2").stdout
    assert first not in people and second in people and "models:/fraud/1" in people
    table = cli("diff", "fraud", "1", "2").stdout
    assert "changed lr: 0.1 → 0.2" in table and "(+0.04)" in table
    assert "changed config.json" in table
    assert second in cli("runs", "list").stdout
    assert "lr=0.1" in cli("runs", "show", first).stdout
    assert "fraud" in cli("experiments", "list").stdout


def test_cli_errors_are_one_line(cli, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    missing = cli("runs", "show", "0" * 32, code=1)
    assert "error: run 0" in missing.output and "Traceback" not in missing.output
    bad = cli("runs", "list", "--filter", "metrics.auc >", code=1)
    assert "error:" in bad.output
    refused = cli("register", "m", str(model_dir), "--parent", "x", code=1)
    assert "error: invalid parent" in refused.output
    unknown = cli("register", "m", str(model_dir), "--run", "1" * 32, code=1)
    assert "error: run 1" in unknown.output
