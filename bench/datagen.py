"""Deterministic benchmark data, generated from a seed into the work folder (never committed).

Bytes come from BLAKE3's extendable output keyed by the seed and the file's name, so
every tool and every run sees identical, incompressible data, and generating 1 GiB takes
about a second. Generated sets are reused across runs (a ``.complete`` marker guards
against half-written ones).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from blake3 import blake3

SEED = "modelyard-bench-1"
CHUNK = 8 * 2**20


@dataclass(frozen=True)
class Sizes:
    """Every size the scenarios use; ``FULL`` is the published suite, ``QUICK`` a smoke run."""

    big_file: int
    small_files: tuple[int, int]  # (count, typical bytes): MNIST as one file per image
    medium_files: tuple[int, int]
    model_dir: int
    versions: int  # scenario 6: versions created from one client
    resolve_versions: int  # scenario 7: versions registered before resolving
    resolve_calls: int
    search_versions: tuple[int, ...]  # scenario 8
    writers: int  # scenario 9
    writes_per_writer: int


FULL = Sizes(2**30, (70_000, 300), (6_000, 30_000), 2**30, 1_000, 10_000, 1_000,
             (10_000, 100_000), 16, 63)
QUICK = Sizes(8 * 2**20, (700, 300), (60, 30_000), 8 * 2**20, 20, 200, 100, (200, 1_000), 4, 3)


def _content(name: str, size: int, offset: int = 0) -> bytes:
    return blake3(f"{SEED}/{name}".encode()).digest(length=size, seek=offset)


def _write(path: Path, name: str, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for offset in range(0, size, CHUNK):
            f.write(_content(name, min(CHUNK, size - offset), offset))


def _cached(root: Path, key: str, build: Callable[[Path], None]) -> Path:
    """``root/key``, built once by ``build(tmp)`` and renamed into place when complete."""
    target = root / key
    if (target / ".complete").exists():
        return target / "data"
    tmp = root / f"{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(target, ignore_errors=True)
    build(tmp / "data")
    (tmp / ".complete").touch()
    tmp.rename(target)
    return target / "data"


def big_file(root: Path, size: int) -> Path:
    """One file of ``size`` bytes (``data/big.bin``)."""
    return _cached(root, f"big-{size}", lambda d: _write(d / "big.bin", "big", size)) / "big.bin"


def many_files(root: Path, count: int, typical: int) -> Path:
    """``count`` files of about ``typical`` bytes (±1/6) in ten class folders, MNIST-style."""
    def build(data: Path) -> None:
        for i in range(count):
            size = typical + (i * 37) % (typical // 3 + 1) - typical // 6
            _write(data / f"class-{i % 10}" / f"{i:06d}.png", f"files-{typical}/{i}", size)
    return _cached(root, f"files-{count}x{typical}", build)


def model_dir(root: Path, size: int) -> Path:
    """A model folder of ``size`` bytes: three large weight shards plus 64 small files."""
    def build(data: Path) -> None:
        shard, small = size // 4, size // 4 // 64
        for k in range(3):
            _write(data / f"model-{k:05d}-of-00003.safetensors", f"shard/{k}", shard)
        for k in range(64):
            _write(data / "tokenizer" / f"part-{k:02d}.bin", f"small/{k}", small)
    return _cached(root, f"model-{size}", build)


def tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def link_copy(source: Path, dest: Path) -> None:
    """A hard-linked copy of a file or tree: instant, and the tools see ordinary files.

    Tools may chmod or move what they track, never rewrite it in place; the scenarios
    change a file only by replacing it (see ``replace_file``), so the source stays intact.
    """
    if source.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.link(source, dest)
    else:
        shutil.copytree(source, dest, copy_function=os.link)


def replace_file(path: Path, content: bytes) -> None:
    """Give ``path`` new content through a new inode, leaving any hard-linked twin alone."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(content)
    os.replace(tmp, path)
