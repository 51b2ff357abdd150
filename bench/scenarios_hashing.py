"""Scenario 10: BLAKE3 and MD5 throughput, the limit each data scenario is compared with."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import datagen
from bench.harness import Case, Context, Driver, Steps

ALGORITHMS = {"blake3": "modelyard", "md5": "dvc"}  # the hash each tool uses on data


def cases(ctx: Context) -> list[Case]:
    driver = Driver(Path(sys.executable), "hashing_ops")

    def case(algo: str, tool: str) -> Case:
        @contextmanager
        def session() -> Iterator[Steps]:
            path = datagen.big_file(ctx.data, ctx.sizes.big_file)
            args = {"algo": algo, "file": str(path), "size": ctx.sizes.big_file}
            yield {"hash": driver.step("hash", args, ctx.work, payload=ctx.sizes.big_file)}
        return Case("10", tool, tool, session, algo=algo)

    return [case(algo, tool) for algo, tool in ALGORITHMS.items()]
