"""``runs metrics``, ``runs compare``, the metric summary of ``runs show`` and
``download runs:/…``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import modelyard
from modelyard.cli.main import app


@pytest.fixture
def cli(cli_home: Path, registry_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    store = str(tmp_path / "objects")

    def invoke(*args: str, code: int = 0) -> Any:
        result = runner.invoke(app, ["--registry", registry_url, "--store", store, *args])
        assert result.exit_code == code, result.output
        return result

    invoke.reg = modelyard.connect(registry_url, store=store, user="alice")  # type: ignore[attr-defined]
    yield invoke
    invoke.reg.close()  # type: ignore[attr-defined]


def _run(reg: Any, model_dir: Path, lr: float, aucs: list[float]) -> str:
    with modelyard.start_run(experiment="e", name=f"lr{lr}", registry=reg) as run:
        run.log_params({"lr": lr, "depth": 6})
        for step, auc in enumerate(aucs):
            run.log_metric("auc", auc, step=step)
        run.log_metric("loss", 0.123456789)
        run.log_artifact(model_dir, "model")
    return run.run_id


def test_metrics_history_and_show_summary(cli, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    run_id = _run(cli.reg, model_dir, 0.1, [0.5, 0.9953364423717521, 0.7])
    points = json.loads(cli("runs", "metrics", run_id, "auc", "--json").stdout)
    assert [(p["step"], p["value"]) for p in points] == [(0, 0.5), (1, 0.9953364423717521),
                                                         (2, 0.7)]
    every = json.loads(cli("runs", "metrics", run_id, "--json").stdout)
    assert {p["key"] for p in every} == {"auc", "loss"}
    table = cli("runs", "metrics", run_id).stdout
    assert "0.995336" in table and "0.9953364423717521" not in table
    shown = cli("runs", "show", run_id).stdout
    assert "auc=0.7 (min 0.5, max 0.995336, 3 points)" in shown
    assert "loss=0.123457" in shown


def test_compare_marks_differences(cli, model_dir: Path) -> None:  # type: ignore[no-untyped-def]
    a = _run(cli.reg, model_dir, 0.1, [0.9])
    b = _run(cli.reg, model_dir, 0.2, [0.9])
    out = json.loads(cli("runs", "compare", a, b, "--json").stdout)
    rows = {r["field"]: r for r in out["rows"]}
    assert rows["params.lr"]["values"] == [0.1, 0.2] and rows["params.lr"]["different"]
    assert not rows["params.depth"]["different"] and not rows["metrics.auc"]["different"]
    lines = cli("runs", "compare", a, b).stdout.splitlines()
    assert any("≠" in line and "params.lr" in line for line in lines)
    assert not any("≠" in line and "params.depth" in line for line in lines)
    assert "at least two" in cli("runs", "compare", a, code=1).stderr


def test_download_run_artifact(cli, model_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run_id = _run(cli.reg, model_dir, 0.1, [0.9])
    cli("download", f"runs:/{run_id}/model", "-o", str(tmp_path / "out"))
    assert (tmp_path / "out" / "weights.bin").read_bytes() == (model_dir / "weights.bin"
                                                                ).read_bytes()
    assert (tmp_path / "out" / "sub" / "vocab.txt").read_text() == "a\nb\nc\n"
    missing = cli("download", f"runs:/{run_id}/nope", "-o", str(tmp_path / "x"), code=1)
    assert "has no artifact 'nope'" in missing.stderr
