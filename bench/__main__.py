"""``python -m bench [SCENARIO...] [--quick] [--repeat N] [--tools modelyard,mlflow,dvc]``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench import (
    anchors,
    datagen,
    scenarios_cli,
    scenarios_data,
    scenarios_dedup,
    scenarios_hashing,
    scenarios_registry,
    scenarios_web,
)
from bench.harness import (
    DEFAULT_BUDGET,
    REPO_ROOT,
    TRASH,
    Case,
    Context,
    Row,
    annotate,
    measure,
    memory_warning,
    results_path,
    results_table,
    select,
    write_results,
)

SCENARIOS = {
    "1": "track one large file", "2": "track many small files", "3": "status and re-add",
    "4": "push and pull, local-folder remote", "5": "register and download a model folder",
    "6": "create versions from one client", "7": "resolve production / alias",
    "8": "search versions", "9": "concurrent writers", "10": "hashing limit",
    "11": "chunk-level dedup: 10 versions of a large file", "12": "command-line start-up",
    "13": "web UI pages at scale",
}
DATA_SCENARIOS = {"1", "2", "3", "4"}
FAMILIES = ("modelyard", "mlflow", "dvc")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the same work through Modelyard, MLflow and DVC and compare. "
                    "Scenarios: " + "; ".join(f"{k} {v}" for k, v in SCENARIOS.items()),
    )
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help="scenario numbers to run (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (8 MiB instead of 1 GiB, 700 files instead of 70,000, "
                             "...) so the whole suite runs in about a minute")
    parser.add_argument("--repeat", type=int, default=3, metavar="N",
                        help="measured runs per operation, after one warm-up (default: 3)")
    parser.add_argument("--warmup", type=int, default=1, metavar="N",
                        help="unmeasured runs before the measured ones (default: 1)")
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET, metavar="SECONDS",
                        help="stop repeating an operation whose measured runs would pass this "
                             f"many seconds; at least one run always counts (default: "
                             f"{DEFAULT_BUDGET:.0f})")
    parser.add_argument("--tools", default=",".join(FAMILIES),
                        help="comma-separated tools to run (default: modelyard,mlflow,dvc)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "modelyard-bench",
                        help="scratch space; generated data is cached here between runs")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON results file (default: bench/results/bench-<time>.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    families = [f.strip() for f in args.tools.split(",") if f.strip()]
    unknown = [s for s in args.scenarios if s not in SCENARIOS] + [
        f for f in families if f not in FAMILIES]
    if unknown or args.repeat < 1 or args.warmup < 0:
        _parser().error(f"unknown scenario or tool: {', '.join(unknown)}" if unknown
                        else "--repeat must be at least 1 and --warmup at least 0")
    if any(f != "modelyard" for f in families):
        anchors.ensure()
    sizes = datagen.QUICK if args.quick else datagen.FULL
    ctx = Context(args.workdir.resolve(), sizes, anchors.VENV)
    wanted = set(args.scenarios or SCENARIOS)
    if wanted & DATA_SCENARIOS:
        wanted.add("10")  # data rows are reported as a fraction of the hashing limit
    all_cases: list[Case] = [*scenarios_data.cases(ctx), *scenarios_registry.cases(ctx),
                             *scenarios_hashing.cases(ctx), *scenarios_dedup.cases(ctx),
                             *scenarios_cli.cases(ctx), *scenarios_web.cases(ctx)]
    cases = sorted(select(all_cases, sorted(wanted), families), key=lambda c: int(c.scenario))
    console = Console(stderr=True)
    if (warning := memory_warning()) is not None:
        console.log(f"[yellow]note:[/] {warning}")
    started = time.monotonic()
    out = args.out or results_path(REPO_ROOT / "bench" / "results")
    meta = {"quick": args.quick, "repeat": args.repeat, "warmup": args.warmup,
            "budget": args.budget, "tools": families,
            "scenarios": sorted(wanted, key=int), "sizes": dataclasses.asdict(sizes),
            "versions": {"mlflow": anchors.MLFLOW, "dvc": anchors.DVC}}
    rows: list[Row] = []
    TRASH.keep_in(ctx.work / "trash")
    try:
        for case in cases:
            rows += measure(case, args.repeat, lambda m: console.log(m, highlight=False),
                            args.warmup, args.budget)
            # written after every case, so an interrupted run keeps what it measured
            write_results(out, rows, {**meta, "elapsed_seconds": time.monotonic() - started})
    finally:
        TRASH.empty()
    ceilings = {r.algo: r.payload / r.median for r in rows
                if r.scenario == "10" and r.algo and r.median}
    annotate(rows, ceilings)
    write_results(out, rows, {**meta, "elapsed_seconds": time.monotonic() - started})
    Console(width=None if sys.stdout.isatty() else 200).print(results_table(rows))
    console.print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
