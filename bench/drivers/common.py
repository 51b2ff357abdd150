"""What every driver shares: the command line, phase timing, the report line, writer pools.

Standard library only: this module also runs in the anchors' environment.
Usage: ``python -m bench.drivers.<tool>_ops OP '<json arguments>'``; the last stdout line
``@bench {"phases": {...}, "extra": {...}}`` is what the harness records.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

REPORT_PREFIX = "@bench "  # marks the report line the harness reads
Args = dict[str, Any]
LATENCY_BUDGET = 20.0  # seconds of calls per latency measurement
Writer = Callable[[Args, int, Any], tuple[list[int], int]]


class Report:
    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.extra: dict[str, Any] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.phases[name] = time.perf_counter() - start

    def latencies(self, label: str, call: Callable[[], object], calls: int,
                  budget: float = LATENCY_BUDGET) -> None:
        """p50 and p99 of ``calls`` calls as two phases (after one untimed call).

        Stops early once ``budget`` seconds are spent, so one slow tool cannot stretch the
        suite by minutes; the number of calls made is then reported as an extra.
        """
        call()
        samples: list[float] = []
        deadline = time.perf_counter() + budget
        while len(samples) < calls and time.perf_counter() < deadline:
            start = time.perf_counter()
            call()
            samples.append(time.perf_counter() - start)
        samples.sort()
        self.phases[f"{label} p50"] = samples[len(samples) // 2]
        self.phases[f"{label} p99"] = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        if len(samples) < calls:
            self.extra[f"{label} calls"] = len(samples)


def serve(ops: dict[str, Callable[[Args, Report], None]]) -> None:
    """Run one op; against a server (``server_pid`` in the arguments) also report the
    server's peak RSS so far, which the harness cannot see (it reaps only the client)."""
    op, args = sys.argv[1], json.loads(sys.argv[2])
    report = Report()
    ops[op](args, report)
    if "server_pid" in args:
        report.extra["server_peak_rss_mib"] = group_peak_rss(int(args["server_pid"])) // 2**20
    print(REPORT_PREFIX + json.dumps({"phases": report.phases, "extra": report.extra}), flush=True)


def group_peak_rss(group: int) -> int:
    """The largest peak resident size (``VmHWM``, bytes) of the live processes in process
    group ``group``: a server and its workers, read from ``/proc`` on this machine."""
    peak = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if int(f.read().rpartition(")")[2].split()[2]) != group:  # field 5: pgrp
                    continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except (OSError, ValueError, IndexError):  # gone meanwhile, or not ours to read
            continue
    return peak


def _writer_entry(writer: Writer, args: Args, index: int, barrier: Any, queue: Any) -> None:
    try:
        queue.put(writer(args, index, barrier))
    except Exception:
        barrier.abort()  # a writer that cannot start fails the run instead of hanging it
        raise


def concurrent_writers(writer: Writer, args: Args, report: Report) -> None:
    """``args['writers']`` processes run ``writer`` at once, released together by a barrier.

    Each writer connects first, waits at the barrier, then writes and returns the version
    numbers it was given and how many writes failed. Time runs from the release to the
    last result, so start-up (imports, connections) is not counted.
    """
    ctx = multiprocessing.get_context("spawn")
    count = int(args["writers"])
    barrier, queue = ctx.Barrier(count + 1), ctx.Queue()
    procs = [ctx.Process(target=_writer_entry, args=(writer, args, i, barrier, queue))
             for i in range(count)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=600)
    start = time.perf_counter()
    results = [queue.get(timeout=1800) for _ in procs]
    report.phases["concurrent writes"] = time.perf_counter() - start
    for proc in procs:
        proc.join()
    numbers = [n for got, _ in results for n in got]
    report.extra.update(
        writes=len(numbers), errors=sum(e for _, e in results),
        duplicates=len(numbers) - len(set(numbers)),
        per_second=len(numbers) / report.phases["concurrent writes"],
    )
