"""Inputs that once got a 5xx from the server (found fuzzing it): each now gets a 4xx that
says what is wrong, or the answer it should have had."""

from __future__ import annotations

import json
import math

import pytest

from server.conftest import Served

pytestmark = [pytest.mark.postgres]

OUT_OF_UTC = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
"""Valid ISO times whose UTC form is outside years 1-9999."""


def _run(served: Served) -> str:
    assert served.client.post("/api/v1/create-experiment", json={"name": "e"}).is_success
    run_id: str = served.client.post("/api/v1/create-run",
                                      json={"experiment": "e"}).json()["run_id"]
    return run_id


def test_nan_and_infinite_metrics_are_read_back(on_pg: Served) -> None:
    """A nan or inf metric (a diverged loss) is valid; its reads were a 500 (starlette's
    JSON refuses them) and now carry the constants json.dumps writes."""
    run_id = _run(on_pg)
    logged = on_pg.client.post(
        "/api/v1/log-metrics", content=json.dumps(
            {"run_id": run_id, "metrics": {"loss": math.nan, "grad": -math.inf}}),
        headers={"Content-Type": "application/json"})
    assert logged.is_success, logged.text
    run = json.loads(on_pg.client.get("/api/v1/get-run", params={"run_id": run_id}).text)
    assert math.isnan(run["metrics"]["loss"]) and run["metrics"]["grad"] == -math.inf
    history = on_pg.client.get("/api/v1/metric-history",
                               params={"run_id": run_id, "key": "grad"})
    assert [p["value"] for p in json.loads(history.text)] == [-math.inf]
    runs = on_pg.client.get("/api/v1/list-runs", params={"experiment": "e"})
    assert runs.status_code == 200


@pytest.mark.parametrize("since", OUT_OF_UTC)
def test_an_audit_since_outside_utc_is_refused(on_pg: Served, since: str) -> None:
    refused = on_pg.client.get("/api/v1/audit", params={"since": since})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith(f"invalid since {since}")


@pytest.mark.parametrize("expires", OUT_OF_UTC[1:])
def test_a_token_expiry_outside_utc_is_refused(on_pg: Served, expires: str) -> None:
    refused = on_pg.client.post("/api/v1/create-token", json={"expires": expires})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith("invalid expiry")
