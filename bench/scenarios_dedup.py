"""Scenario 11: chunk-level dedup, what ten versions of a large file cost in storage and transfer.

One driver process per tool and series (``bench.drivers.dedup_ops``) stores every
version and reports, besides the time, the bytes: store growth after the first version
as a percentage of what whole-file storage adds, and the same for what each push sends
and each pull brings. Modelyard registers each version, adds and pushes it to a folder
remote and pulls it into a second clone; DVC adds, pushes and pulls; MLflow logs and
registers. ``--quick`` uses 64 MiB files: still above the 32 MiB chunking threshold.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import anchors, datagen
from bench.drivers.dedup_ops import ROW, csv_rows
from bench.harness import Case, Context, Driver, Steps

QUICK_SIZE = 64 * 2**20
FULL_VERSIONS, QUICK_VERSIONS = 10, 4


def model_base(root: Path, size: int) -> Path:
    """Version 1 of the model: a safetensors header (8-byte length, JSON) then weights."""
    def build(data: Path) -> None:
        header = json.dumps({"__metadata__": {"format": "pt"}, "weight": {
            "dtype": "F32", "shape": [size // 4096, 1024], "data_offsets": [0, size]}}).encode()
        data.mkdir(parents=True)
        with open(data / "v1.safetensors", "wb") as out, open(
                datagen.big_file(root, size), "rb") as weights:
            out.write(len(header).to_bytes(8, "little") + header)
            while block := weights.read(datagen.CHUNK):
                out.write(block)
    return datagen._cached(root, f"dedup-model-{size}", build) / "v1.safetensors"


def csv_base(root: Path, size: int) -> Path:
    """The table's first version: ``size`` bytes of fixed-width rows."""
    def build(data: Path) -> None:
        data.mkdir(parents=True)
        rows, block = size // ROW, 100_000
        with open(data / "v1.csv", "wb") as out:
            for first in range(0, rows, block):
                out.write(csv_rows(first, min(block, rows - first), "base"))
    return datagen._cached(root, f"dedup-csv-{size}", build) / "v1.csv"


def cases(ctx: Context) -> list[Case]:
    quick = ctx.sizes == datagen.QUICK
    size = QUICK_SIZE if quick else ctx.sizes.big_file
    count = QUICK_VERSIONS if quick else FULL_VERSIONS
    ours = Driver(Path(sys.executable), "dedup_ops")
    theirs = Driver(anchors.python(ctx.anchors_venv), "dedup_ops")
    out = []
    for tool, driver in (("modelyard", ours), ("dvc", theirs), ("mlflow", theirs)):
        def session(tool: str = tool, driver: Driver = driver) -> Iterator[Steps]:
            folder = ctx.scratch("s11", tool)
            series = {"model": model_base(ctx.data, size), "csv": csv_base(ctx.data, size)}
            yield {f"{kind}: {count if kind == 'model' else 4} versions": driver.step(
                tool, {"kind": kind, "base": str(base), "count": count,
                       "work": str(folder / kind)}, folder)
                   for kind, base in series.items()}
        out.append(Case("11", tool, tool, contextmanager(session)))
    return out
