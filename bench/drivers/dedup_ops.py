"""Scenario 11's drivers: successive versions of a large file, what each tool stores and moves.

Standard library at import (this module also runs in the anchors' environment); each tool's
code is imported inside its own op. Every tool gets byte-identical versions: version 1 is
a copy of the scenario's base file, and each later one is derived from the previous by a
seeded edit (``random.Random``), so the figures compare like with like.

- ``model``: a safetensors-like file; each new version rewrites about 1 % of its bytes in
  four contiguous regions (a fine-tune touching a few layers).
- ``csv``: a table of fixed-width rows; two versions each append 1 % more rows, then one
  rewrites 1 % of the rows in the middle.

Bytes are measured, never estimated: a store's growth is the size of the files under its
folder, what a push sends is what the tool reports (Modelyard) or what the remote folder
grew by (DVC), what a pull brings is what the tool reports or what the clone's cache grew by.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.drivers.common import Args, Report, serve

MODEL, TABLE = "model.safetensors", "table.csv"
ROW = 61  # bytes per CSV row: "%010d,<40 hex>,%08d\n"
REGIONS = 4


def du(path: Path) -> int:
    """Bytes of the files under ``path`` (0 if absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def csv_rows(first: int, count: int, seed: str) -> bytes:
    """``count`` fixed-width rows numbered from ``first``, their content drawn from ``seed``."""
    raw = random.Random(f"{seed}/{first}").randbytes(20 * count).hex()
    return "".join(f"{first + i:010d},{raw[40 * i:40 * i + 40]},{(first + i) % 99991:08d}\n"
                   for i in range(count)).encode()


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    """A new version of ``path`` through a new inode: tools may have linked the old one."""
    tmp = path.with_name(path.name + ".next")
    shutil.copyfile(path, tmp)
    make(tmp)
    os.replace(tmp, path)


def model_versions(base: Path, work: Path, count: int) -> Iterator[tuple[str, Path]]:
    """Version k of the model at ``work/model.safetensors``, k = 1..count."""
    path = work / MODEL
    shutil.copyfile(base, path)
    yield "v1", path
    size = path.stat().st_size
    region = size // 100 // REGIONS
    for k in range(2, count + 1):
        rng = random.Random(f"model/{k}")

        def edit(target: Path, rng: random.Random = rng) -> None:
            with open(target, "r+b") as f:
                for _ in range(REGIONS):
                    f.seek(rng.randrange(4096, size - region))
                    f.write(rng.randbytes(region))
        _replace(path, edit)
        yield f"v{k}", path


def csv_versions(base: Path, work: Path) -> Iterator[tuple[str, Path]]:
    """The table, then two versions appending 1 % of rows, then one changing 1 % in the middle."""
    path = work / TABLE
    shutil.copyfile(base, path)
    yield "base", path
    for k in (1, 2):
        rows = path.stat().st_size // ROW

        def append(target: Path, rows: int = rows) -> None:
            with open(target, "ab") as f:
                f.write(csv_rows(rows, rows // 100, "append"))
        _replace(path, append)
        yield f"append {k}", path
    rows = path.stat().st_size // ROW

    def change(target: Path) -> None:
        start = rows // 2
        with open(target, "r+b") as f:
            f.seek(start * ROW)
            f.write(csv_rows(start, rows // 100, "changed"))
    _replace(path, change)
    yield "change middle", path


def _versions(args: Args, work: Path) -> Iterator[tuple[str, Path]]:
    if args["kind"] == "model":
        return model_versions(Path(args["base"]), work, int(args["count"]))
    return csv_versions(Path(args["base"]), work)


class Tally:
    """Per version: file size, store size after it, bytes pushed and pulled."""

    def __init__(self) -> None:
        self.rows: list[dict[str, int]] = []

    def add(self, **row: int) -> None:
        self.rows.append(row)

    def report(self, report: Report) -> None:
        """Growth after the first version, as % of the new versions' whole size (what
        whole-file storage adds), and the same for each push and pull after the first."""
        later = self.rows[1:]
        whole = sum(r["size"] for r in later)
        growth = self.rows[-1]["stored"] - self.rows[0]["stored"]
        report.extra["versions"] = len(self.rows)
        report.extra["growth_bytes"] = growth
        report.extra["growth_pct"] = round(100 * growth / whole, 2)
        for key in ("pushed", "pulled"):
            if key in self.rows[0]:
                moved = sum(r[key] for r in later)
                report.extra[f"{key}_bytes"] = moved
                report.extra[f"{key}_pct"] = round(100 * moved / whole, 2)
        report.extra["per_version_pct"] = ", ".join(
            f"{100 * (b['stored'] - a['stored']) / b['size']:.2f}"
            for a, b in zip(self.rows, later, strict=False))


@contextmanager
def _clock(timed: dict[str, float], key: str) -> Iterator[None]:
    """Add the block's wall time to ``timed[key]`` (a phase summed over versions)."""
    start = time.perf_counter()
    yield
    timed[key] = timed.get(key, 0.0) + time.perf_counter() - start


def _git_init(folder: Path) -> None:
    folder.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=folder, check=True)


def modelyard(args: Args, report: Report) -> None:
    """Each version registered (the registry's store) and added, pushed to a folder remote,
    and pulled into a second clone that has the previous version."""
    import modelyard as my
    from modelyard import data
    from modelyard.storage.content.usage import store_stats

    work = Path(args["work"])
    repo, clone, remote = work / "repo", work / "clone", work / "remote"
    for folder in (repo, clone):
        _git_init(folder)
        data.init(folder)
        data.remote_add("bench", str(remote), default=True, root=folder)
    tally = Tally()
    timed: dict[str, float] = {}
    with my.open_embedded(my.Settings.resolve(home=work / "home", user="bench")) as reg:
        for label, path in _versions(args, repo):
            with _clock(timed, "register"):
                reg.register("bench", str(path), description=label)
            with _clock(timed, "add + push"):
                data.add(str(path), root=repo)
                pushed = data.push(root=repo)
            shutil.copyfile(repo / f"{path.name}.yard", clone / f"{path.name}.yard")
            with _clock(timed, "pull"):
                fetched, _ = data.pull(root=clone, force=True)
            for folder in (repo, clone):  # each cache keeps the current version only
                data.gc(root=folder, workspace=True, grace=0)
            tally.add(size=path.stat().st_size, stored=store_stats(reg.store).stored_bytes,
                      pushed=pushed.bytes_sent, pulled=fetched.bytes_sent)
    tally.report(report)
    report.extra["remote_growth_pct"] = round(
        100 * (du(remote) - tally.rows[0]["pushed"]) / sum(r["size"] for r in tally.rows[1:]),
        2)
    _phases(report, args, timed)


def dvc(args: Args, report: Report) -> None:
    """Each version added and pushed to a folder remote, then pulled into a second clone."""
    exe = str(Path(sys.executable).with_name("dvc"))
    work = Path(args["work"])
    repo, clone, remote = work / "repo", work / "clone", work / "remote"

    def run(folder: Path, *argv: str) -> None:
        subprocess.run([exe, *argv], cwd=folder, check=True, capture_output=True)

    for folder in (repo, clone):
        _git_init(folder)
        run(folder, "init", "-q")
        run(folder, "config", "core.analytics", "false")
        run(folder, "config", "core.site_cache_dir", ".dvc-site")
        run(folder, "remote", "add", "-d", "bench", str(remote))
    tally = Tally()
    timed: dict[str, float] = {}
    for _label, path in _versions(args, repo):
        before = du(remote)
        with _clock(timed, "add + push"):
            run(repo, "add", "-q", path.name)
            run(repo, "push", "-q")
        pushed = du(remote) - before
        shutil.copyfile(repo / f"{path.name}.dvc", clone / f"{path.name}.dvc")
        before = du(clone / ".dvc" / "cache")
        with _clock(timed, "pull"):
            run(clone, "pull", "-q", "--force")
        pulled = du(clone / ".dvc" / "cache") - before
        for folder in (repo, clone):  # each cache keeps the current version only
            run(folder, "gc", "-w", "-f", "-q")
        tally.add(size=path.stat().st_size, stored=du(remote), pushed=pushed, pulled=pulled)
    tally.report(report)
    _phases(report, args, timed)


def mlflow(args: Args, report: Report) -> None:
    """Each version logged as a run's artifact and registered as a model version."""
    import warnings

    import mlflow as ml

    warnings.filterwarnings("ignore")
    work = Path(args["work"])
    artifacts = work / "artifacts"
    ml.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
    ml.set_registry_uri(f"sqlite:///{work / 'mlflow.db'}")
    experiment = ml.create_experiment("bench", artifact_location=artifacts.as_uri())
    tally = Tally()
    timed: dict[str, float] = {}
    for _label, path in _versions(args, work / "src"):
        with _clock(timed, "register"):
            with ml.start_run(experiment_id=experiment) as run:
                ml.log_artifact(str(path), artifact_path="model")
            ml.register_model(f"{run.info.artifact_uri}/model", "bench")
        tally.add(size=path.stat().st_size, stored=du(artifacts))
    tally.report(report)
    _phases(report, args, timed)


def _phases(report: Report, args: Args, timed: dict[str, float]) -> None:
    for name, seconds in timed.items():
        report.phases[f"{args['kind']}: {name}, all versions"] = seconds
    shutil.rmtree(args["work"], ignore_errors=True)  # gigabytes per tool: free them now


def _prepared(op: Callable[[Args, Report], None]) -> Callable[[Args, Report], None]:
    def run(args: Args, report: Report) -> None:
        work = Path(args["work"]) / f"run-{args['run']}"
        shutil.rmtree(work, ignore_errors=True)
        (work / "src").mkdir(parents=True)
        op({**args, "work": str(work)}, report)
    return run


if __name__ == "__main__":
    ops: dict[str, Any] = {"modelyard": modelyard, "dvc": dvc, "mlflow": mlflow}
    serve({name: _prepared(op) for name, op in ops.items()})
