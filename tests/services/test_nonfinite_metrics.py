"""NaN and infinite metrics mean the same on SQLite and PostgreSQL (the ``reg`` fixture).

A diverged run logs ``loss = nan``; a version registered from it carries the value in its
metrics and lineage. PostgreSQL's JSON refuses NaN and infinity and SQLite's REAL column
keeps no NaN, so each backend used to fail on a different half of this.
"""

from __future__ import annotations

import math
from pathlib import Path

from modelyard.services.registry import Registry


def _same(found: dict[str, float], expected: dict[str, float]) -> bool:
    return found.keys() == expected.keys() and all(
        math.isnan(v) if math.isnan(expected[k]) else v == expected[k] for k, v in found.items())


def test_nan_and_infinity_round_trip_through_runs_versions_search_and_audit(
    reg: Registry, model_dir: Path
) -> None:
    run = reg.create_run("diverged")
    reg.log_metrics(run.run_id, {"loss": 0.5, "grad": math.inf}, step=0)
    reg.log_metrics(run.run_id, {"loss": math.nan, "grad": -math.inf}, step=1)
    history = [p.value for p in reg.metric_history(run.run_id, "loss")]
    assert history[0] == 0.5 and math.isnan(history[1])
    assert _same(reg.get_run(run.run_id).metrics, {"loss": math.nan, "grad": -math.inf})

    version = reg.register("m", model_dir, run=run.run_id, metrics={"top": math.inf})
    expected = {"loss": math.nan, "grad": -math.inf, "top": math.inf}
    for found in (version, reg.get_version("m", 1), reg.search_versions()[0],
                  reg.search_versions("metrics.top > 1e308")[0]):
        assert _same(found.metrics, expected)
        assert _same(found.lineage["metrics"], {"loss": math.nan, "grad": -math.inf})
    assert reg.search_versions("metrics.loss > 0") == []  # NaN compares false, as missing
    # The JSON form (REST, --json) keeps them too, in the record's Any-typed lineage as well.
    encoded = reg.get_version("m", 1).to_dict()
    assert _same(encoded["metrics"], expected) and math.isnan(encoded["lineage"]["metrics"]["loss"])
    registered = next(e for e in reg.audit("m") if e.action == "version.register")
    assert registered.after is not None and _same(registered.after["metrics"], expected)
    assert math.isnan(registered.to_dict()["after"]["metrics"]["loss"])
    report = reg.verify_audit()
    assert report.ok and report.disagreements == (), report
