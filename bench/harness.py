"""Timing: every measured operation runs in a fresh process, once to warm up, then N times.

A fresh process per run keeps tools from sharing warm state and lets us read the peak
resident memory of exactly that run (``os.wait4`` returns the child's rusage, whose
``ru_maxrss`` covers the largest process of the tree it reaped). A driver may report its
own phase timings (a ``@bench {json}`` line, see ``bench.drivers.common``) so that
interpreter start-up and one-time connection setup stay out of API measurements; a
command-line tool is timed as the whole process, the way a user waits for it.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.datagen import Sizes
from bench.drivers.common import REPORT_PREFIX

REPO_ROOT = Path(__file__).resolve().parent.parent
BASELINE = "modelyard"
DEFAULT_TIMEOUT = 1800.0
DEFAULT_BUDGET = 90.0  # seconds of measured runs per operation (see _measure_step)
# A warm-up longer than this counts as a measured run: what it warms (page cache, imports)
# is small next to its own length, and repeating minute-long runs is what made the suite
# overrun its 30 minutes.
LONG_RUN = 15.0


class BenchError(Exception):
    """A measured or setup command failed; the row says so instead of a number."""


@dataclass(frozen=True)
class Context:
    """Where a run works and how big it is; scenario modules build their cases from it."""

    work: Path  # scratch space; generated data is cached under work/data
    sizes: Sizes
    anchors_venv: Path

    @property
    def data(self) -> Path:
        return self.work / "data"

    def scratch(self, *parts: str) -> Path:
        """A fresh (emptied) folder for one case."""
        return empty_dir(self.work.joinpath("runs", *parts))


def empty_dir(path: Path) -> Path:
    discard(path)
    path.mkdir(parents=True)
    return path


class Trash:
    """Where a run's leftovers go until the suite ends, instead of being deleted at once.

    Deleting the last run's 70,000-file cache just before the next run is measured made
    every file that run creates slower, for whichever tool: a journal-less ext4 scans past
    recently freed inodes on each create for minutes (``perf``: ``recently_deleted``, half
    the samples; the same ``data add`` took 11.6 s in a fresh folder and 17-29 s after a
    deletion). Moving a folder aside is one rename; the trash is emptied when the suite
    ends, or between runs (outside any measured phase) when the disk runs low.
    """

    def __init__(self) -> None:
        self.root: Path | None = None
        self._names = itertools.count()

    def keep_in(self, root: Path) -> None:
        """Use ``root`` (on the scratch space's filesystem), emptying what a killed suite
        left there."""
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.root = root

    def discard(self, path: Path) -> None:
        if not os.path.lexists(path):
            return
        if self.root is not None:
            with suppress(OSError):  # another filesystem: deleted below
                path.rename(self.root / f"{next(self._names)}-{path.name}")
                if shutil.disk_usage(self.root).free < LOW_DISK:
                    self.empty()
                return
        _delete(path)

    def empty(self) -> None:
        if self.root is not None:
            for name in os.listdir(self.root):
                _delete(self.root / name)


LOW_DISK = 12 * 2**30  # free bytes under which the trash is emptied at once
TRASH = Trash()


def discard(path: Path) -> None:
    """Remove ``path`` (a file or folder) from where it was: into the trash (see ``Trash``)."""
    TRASH.discard(path)


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def tool_env(**extra: str) -> dict[str, str]:
    """The environment of every measured process: no telemetry, the bench package importable
    (before the caller's own PYTHONPATH, made absolute, so a worktree's ``src`` is what a
    driver or server started in a case folder imports)."""
    inherited = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                 if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), *inherited]),
           "MLFLOW_DISABLE_TELEMETRY": "true",
           "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "bench",
           "GIT_AUTHOR_EMAIL": "bench@localhost", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@localhost", "PYTHONWARNINGS": "ignore"}
    env.update(extra)
    return env


@dataclass(frozen=True)
class Driver:
    """The one way to run tool code: ``python -m bench.drivers.<module> OP '<json>'``."""

    python: Path
    module: str

    def argv(self, op: str, args: Mapping[str, Any]) -> list[str]:
        return [str(self.python), "-m", f"bench.drivers.{self.module}", op,
                json.dumps(args, default=str)]

    def step(self, op: str, args: Mapping[str, Any], cwd: Path,
             before: Callable[[int], None] | None = None, payload: int = 0) -> Step:
        """A measured call; the run index is passed on as ``args['run']``."""
        return Step(lambda run: self.argv(op, {**args, "run": run}), cwd, tool_env(), before,
                    payload)

    def run(self, op: str, args: Mapping[str, Any], cwd: Path) -> Outcome:
        """An untimed call (setup)."""
        return run_process(self.argv(op, args), cwd, tool_env())


@dataclass
class Step:
    """One measured operation: a command in a fresh process, after an untimed ``before``."""

    argv: Callable[[int], Sequence[str]]  # gets the run index, negative for warm-ups
    cwd: Path
    env: Mapping[str, str] | None = None
    before: Callable[[int], None] | None = None
    payload: int = 0  # bytes the operation covers, for the fraction of the hashing limit


Steps = dict[str, Step]


@dataclass
class Case:
    """What one tool does for one scenario: a session (untimed setup) yielding its steps."""

    scenario: str
    tool: str  # column label, e.g. "mlflow (server)"
    family: str  # the --tools entry that enables it
    session: Callable[[], AbstractContextManager[Steps]] | None
    unsupported: str | None = None  # printed instead of a number
    algo: str | None = None  # the hash the tool uses on its data ("blake3", "md5")
    label: str = "-"  # the phase shown on an unsupported or failed row


@dataclass
class Row:
    scenario: str
    phase: str
    tool: str
    samples: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # per run, whole process (all phases)
    peak_rss: int = 0
    payload: int = 0
    algo: str | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    ratio: float | None = None
    hash_fraction: float | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario, "phase": self.phase, "tool": self.tool,
            "samples": self.samples, "median": self.median,
            "min": min(self.samples, default=None), "max": max(self.samples, default=None),
            "cpu_seconds": self.cpu, "peak_rss": self.peak_rss, "payload_bytes": self.payload,
            "note": self.note,
            "extra": self.extra, "ratio": self.ratio, "hash_fraction": self.hash_fraction,
        }


@dataclass
class Outcome:
    seconds: float
    cpu: float  # user + system seconds of the process tree: what a busy machine cannot inflate
    peak_rss: int
    report: dict[str, Any]


def run_process(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Run ``argv`` to completion in a new session; wall time, peak RSS and its report."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env) if env else None,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        killer = threading.Timer(timeout, _kill_group, (proc.pid,))
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        tail = (stderr.strip() or stdout.strip() or f"exit {proc.returncode}").splitlines()[-1]
        raise BenchError(f"{Path(argv[0]).name} {' '.join(argv[1:3])}: {tail[:200]}")
    report: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith(REPORT_PREFIX):
            report = json.loads(line[len(REPORT_PREFIX):])
    return Outcome(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024, report)


def _kill_group(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def measure(case: Case, repeat: int, log: Callable[[str], None], warmup: int = 1,
            budget: float = DEFAULT_BUDGET) -> list[Row]:
    """All rows of one case; a failure or an unsupported query becomes a row with a note."""
    if case.unsupported or case.session is None:
        return [Row(case.scenario, case.label, case.tool,
                    note=case.unsupported or "not available")]
    rows: list[Row] = []
    try:
        with case.session() as steps:
            for name, step in steps.items():
                log(f"scenario {case.scenario} · {case.tool} · {name}")
                rows.extend(_measure_step(case, name, step, repeat, warmup, budget))
    except BenchError as exc:
        rows.append(Row(case.scenario, case.label, case.tool, note=f"failed: {exc}"))
    return rows


def _measure_step(case: Case, name: str, step: Step, repeat: int, warmup: int,
                  budget: float) -> list[Row]:
    """Warm-ups, then up to ``repeat`` runs; a run that would end past ``budget`` seconds of
    measured runs is not started (at least one always is), so one slow tool cannot stretch
    the suite: the row then says how many runs it has."""
    samples: dict[str, list[float]] = {}
    extras: list[dict[str, Any]] = []
    cpu: list[float] = []
    peak, spent, run = 0, 0.0, -warmup
    try:
        while len(cpu) < repeat:
            if cpu and spent * (len(cpu) + 1) / len(cpu) > budget:
                break
            if step.before is not None:
                step.before(run)
            outcome = run_process(step.argv(run), step.cwd, step.env)
            run += 1
            if run <= 0 and outcome.seconds < LONG_RUN:
                continue  # a warm-up; a long one is kept as a sample (see LONG_RUN)
            spent += outcome.seconds
            peak = max(peak, outcome.peak_rss)
            cpu.append(outcome.cpu)
            for phase, seconds in (outcome.report.get("phases") or {name: outcome.seconds}).items():
                samples.setdefault(phase, []).append(float(seconds))
            extras.append(outcome.report.get("extra") or {})
    except BenchError as exc:
        return [Row(case.scenario, name, case.tool, note=f"failed: {exc}")]
    extra = _combine(extras)
    note = f"{len(cpu)} of {repeat} runs (time budget)" if len(cpu) < repeat else ""
    return [Row(case.scenario, phase, case.tool, values, cpu, peak, step.payload, case.algo,
                note, extra) for phase, values in samples.items()]


def _combine(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts add up over runs (errors, duplicates); rates and sizes take the median."""
    combined: dict[str, Any] = {}
    for key in {k for e in extras for k in e}:
        values = [e[key] for e in extras if key in e]
        if all(isinstance(v, int) for v in values):
            combined[key] = sum(values) if key in ("errors", "duplicates") else values[-1]
        elif all(isinstance(v, (int, float)) for v in values):
            combined[key] = statistics.median(values)
        else:
            combined[key] = values[-1]
    return combined


def annotate(rows: list[Row], ceilings: Mapping[str, float]) -> None:
    """Fill ratios against Modelyard and each data row's fraction of its hashing limit."""
    base = {(r.scenario, r.phase): r.median for r in rows if r.tool == BASELINE}
    for row in rows:
        mine, theirs = row.median, base.get((row.scenario, row.phase))
        if mine and theirs:
            row.ratio = mine / theirs
        ceiling = ceilings.get(row.algo or "")
        if mine and row.payload and ceiling:
            row.hash_fraction = row.payload / mine / ceiling


def select(cases: Sequence[Case], scenarios: Sequence[str], families: Sequence[str]) -> list[Case]:
    return [c for c in cases if (not scenarios or c.scenario in scenarios)
            and c.family in families]


def machine() -> dict[str, Any]:
    """Enough about the host to read the numbers: CPU, cores, memory, Python, load."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": memory,
            "python": sys.version.split()[0], "platform": sys.platform,
            "load_average": list(os.getloadavg()),
            "freed_memory_reported_after_ms": freed_memory_reported_after_ms()}


_PAGE_REPORTING = Path("/sys/module/page_reporting/parameters/min_free_ms")


def freed_memory_reported_after_ms() -> int | None:
    """How long a VM keeps freed memory before handing it back to its host (the
    ``page_reporting`` module's ``min_free_ms``, where the kernel has it), else None: at
    0, the next run to touch freed memory waits for the host to back it again (see
    ``memory_warning`` and the README's "Memory on a VM")."""
    try:
        return int(_PAGE_REPORTING.read_text())
    except (OSError, ValueError):
        return None


def memory_warning() -> str | None:
    """What to tell the user when freed memory goes back to the host at once."""
    if freed_memory_reported_after_ms() != 0:
        return None
    return ("this VM hands freed memory back to its host at once (page_reporting "
            "min_free_ms=0): a run touching memory another run freed waits ~2.5 s per GiB, "
            "so rows that write a GiB move by up to 3x. To hold freed memory for 300 s "
            f"while measuring, as root: echo 300000 > {_PAGE_REPORTING}")


def results_path(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory / time.strftime("bench-%Y%m%dT%H%M%SZ.json", time.gmtime())



def write_results(path: Path, rows: Sequence[Row], meta: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**meta, "machine": machine(), "results": [r.to_dict() for r in rows]}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def results_table(rows: Sequence[Row]) -> Table:
    """Scenario, phase, tool, median/min/max, ratio against Modelyard, peak RSS, notes."""
    table = Table(title="Modelyard vs MLflow vs DVC", show_lines=False)
    for column in ("#", "phase", "tool", "median", "min", "max", "vs modelyard", "process CPU",
                   "peak RSS", "notes"):
        table.add_column(column, overflow="fold", justify="right" if column in (
            "median", "min", "max", "process CPU") else "left")
    for r in rows:
        table.add_row(
            r.scenario, r.phase, r.tool, _secs(r.median), _secs(min(r.samples, default=None)),
            _secs(max(r.samples, default=None)), f"{r.ratio:.2f}x" if r.ratio else "",
            _secs(statistics.median(r.cpu)) if r.cpu else "",
            f"{r.peak_rss / 2**20:.0f} MiB" if r.peak_rss else "", _notes(r),
        )
    return table


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def _notes(row: Row) -> str:
    parts = [row.note] if row.note else []
    if row.hash_fraction is not None:
        share = row.hash_fraction
        parts.append(f"{share:.0%}" if share >= 0.1 else f"{share:.2%}")
        parts[-1] += f" of {row.algo} limit"
    parts.extend(f"{k}={_fmt(v)}" for k, v in sorted(row.extra.items()))
    return "; ".join(parts)


def _fmt(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, float) else str(value)
