"""The benchmark suite must not rot: a --quick run yields a timed row for every scenario.

Runs the Modelyard column. MLflow and DVC join when their environment
(``bench/.venv-anchors``) already exists and ``MODELYARD_BENCH_SMOKE_ANCHORS=1`` is set:
their quick run takes minutes (a fresh MLflow SQLite schema alone is ~7 s per scenario), too
long for every test run. The test never creates that environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.__main__ import SCENARIOS  # noqa: E402

from bench import anchors  # noqa: E402


@pytest.mark.slow
def test_quick_run_reports_every_scenario_for_every_tool(tmp_path: Path) -> None:
    with_anchors = anchors.present() and os.environ.get("MODELYARD_BENCH_SMOKE_ANCHORS") == "1"
    tools = ["modelyard", "mlflow", "dvc"] if with_anchors else ["modelyard"]
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--repeat", "1", "--warmup", "0",
         "--tools", ",".join(tools), "--workdir", str(tmp_path / "work"), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(out.read_text())["results"]

    assert {r["scenario"] for r in rows} == set(SCENARIOS)
    failed = [(r["scenario"], r["tool"], r["note"]) for r in rows if "failed" in r["note"]]
    assert failed == []
    for scenario in SCENARIOS:
        ours = [r for r in rows if r["scenario"] == scenario and r["tool"] == "modelyard"]
        assert ours, f"no modelyard row for scenario {scenario}"
        for row in ours:
            assert row["samples"] and all(s > 0 for s in row["samples"]), row
            assert row["peak_rss"] > 0 and row["note"] == "", row
    baseline = {(r["scenario"], r["phase"]) for r in rows if r["tool"] == "modelyard"}
    for tool in tools[1:]:
        timed = [r for r in rows if r["tool"].startswith(tool) and r["median"]]
        assert timed and all(r["median"] > 0 for r in timed)
        assert all(r["ratio"] > 0 for r in timed if (r["scenario"], r["phase"]) in baseline)
