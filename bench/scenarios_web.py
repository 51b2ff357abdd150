"""Scenario 13: the web UI's pages at scale, Modelyard against MLflow, both served.

A registry with a 10,000-version model (scenario 7's bulk load, through each tool's
storage layer) and 1,000 more models; then the models page, that model's page and its
metric chart are fetched, signed in with a session cookie as a browser is: from the app
in-process on the embedded registry (``modelyard``: the render and the ASGI stack), and
over loopback from ``modelyard server --workers 2``. MLflow draws its pages in the browser, so its
column times the ajax-api calls its UI makes for the same two pages on ``mlflow server``;
it has no chart of a metric across versions. p50 and p99 per page, and the CPU time per call
of whoever renders it (the server's processes, or the process running the app), since on a
busy machine wall time also counts waiting for a core.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import anchors, scenarios_registry
from bench.harness import Case, Context, Driver, Steps

SCENARIO = "13"


def cases(ctx: Context) -> list[Case]:
    targets = scenarios_registry.targets(ctx)
    versions = ctx.sizes.resolve_versions  # 10,000 (200 with --quick)
    extra = {"count": versions, "models": versions // 10}
    calls = ctx.sizes.resolve_calls // 5
    out: list[Case] = []
    ours = Driver(targets["modelyard"].driver.python, "web_ops")
    theirs = Driver(anchors.python(ctx.anchors_venv), "mlflow_web_ops")
    for key, driver in (("modelyard", ours), ("modelyard-server", ours),
                        ("mlflow-server", theirs)):
        target = targets[key]

        @contextmanager
        def session(target: Any = target, driver: Driver = driver) -> Iterator[Steps]:
            folder: Path = ctx.scratch(f"s{SCENARIO}", target.key)
            file = folder / "model.bin"
            file.write_bytes(b"a tiny model\n")
            with target.connect(folder) as conn:
                loaded = driver.run("populate", {**conn, **extra, "file": str(file)}, folder)
                token = loaded.report.get("extra", {}).get("token")  # an embedded registry's
                yield {"pages": driver.step("pages", {**conn, "calls": calls,
                                                      **({"token": token} if token else {})},
                                            folder)}

        out.append(Case(SCENARIO, target.tool, target.family, session))
    out.append(Case(SCENARIO, "mlflow (server)", "mlflow", None, label="model chart",
                    unsupported="MLflow's UI has no chart of a metric across a model's "
                                "versions"))
    return out
