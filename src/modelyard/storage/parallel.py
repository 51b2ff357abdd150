"""Threads for I/O-bound work (transfers, checkouts, existence checks): one fail-fast map."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """Transfers wait on the network or the disk, not the CPU: four per core, capped."""
    return min(32, 4 * (os.cpu_count() or 1))


def run_parallel(fn: Callable[[T], R], items: Sequence[T], jobs: int | None = None) -> list[R]:
    """``fn`` over ``items`` in ``jobs`` threads, results in order; the first failure cancels
    the rest and is raised."""
    jobs = jobs or default_jobs()
    if len(items) <= 1 or jobs <= 1:
        return [fn(item) for item in items]
    # Items go in chunks (a few per thread) so 70,000 small files cost 100 futures, not 70,000.
    size = max(1, len(items) // (jobs * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(_each, fn, chunk) for chunk in chunks]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            future.result()
        return [result for future in futures for result in future.result()]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _each(fn: Callable[[T], R], chunk: Sequence[T]) -> list[R]:
    return [fn(item) for item in chunk]
