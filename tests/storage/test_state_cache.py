"""The state cache: hits only for an identical stat, batched, shared between processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from modelyard.storage.content.hashing import hash_bytes, hash_files
from modelyard.storage.index.state_cache import StateCache, hash_file_cached, hash_paths_cached

DIGEST = "blake3:" + "c" * 64


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[StateCache]:
    with StateCache(tmp_path / "state" / "cache.db") as opened:
        yield opened


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the state cache actually hashes."""
    calls: list[str] = []

    def counting(paths: Sequence[str], workers: int | None = None, **kw: Any) -> list[str]:
        calls.extend(os.fspath(p) for p in paths)
        return hash_files(paths, workers, **kw)

    monkeypatch.setattr("modelyard.storage.index.state_cache.hash_files", counting)
    return calls


def test_hit_only_when_inode_size_and_mtime_match(cache: StateCache, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("one")
    st = os.stat(path)
    assert cache.get(path, st) is None
    cache.put_many([(path, st, DIGEST)])
    assert cache.get(path, st) == DIGEST
    assert cache.get(str(path), os.stat(path)) == DIGEST

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert cache.get(path, os.stat(path)) is None  # touched

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.get(path, os.stat(path)) == DIGEST  # same stat again

    replacement = tmp_path / "g"
    replacement.write_text("one")
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(replacement, path)
    assert cache.get(path, os.stat(path)) is None  # new inode

    path.write_text("longer")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.get(path, os.stat(path)) is None  # new size


def test_unchanged_files_are_not_hashed_again(
    cache: StateCache, tmp_path: Path, hashed: list[str]
) -> None:
    paths = []
    for i in range(20):
        path = tmp_path / f"f{i}"
        path.write_text(f"content {i}")
        paths.append(str(path))
    first = hash_paths_cached(paths, cache, workers=4)
    assert first == {p: hash_bytes(Path(p).read_bytes()) for p in paths}
    assert sorted(hashed) == sorted(paths)

    hashed.clear()
    assert hash_paths_cached(paths, cache) == first
    assert hashed == []

    st = os.stat(paths[3])
    os.utime(paths[3], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert hash_paths_cached(paths, cache) == first
    assert hashed == [paths[3]]


def test_a_hit_returns_the_recorded_digest_without_reading(
    cache: StateCache, tmp_path: Path
) -> None:
    """Same inode, size and mtime: the cache is trusted, even against rewritten bytes."""
    path = tmp_path / "f"
    path.write_text("old!")
    st = os.stat(path)
    old = hash_file_cached(path, cache)
    path.write_text("new!")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert hash_file_cached(path, cache) == old
    assert hash_file_cached(path, None) == hash_bytes(b"new!")


def test_entries_persist_and_are_shared_between_processes(tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    path = tmp_path / "f"
    path.write_text("x")
    StateCache(db).close()
    script = textwrap.dedent(
        """
        import os, sys
        from modelyard.storage.index.state_cache import StateCache
        with StateCache(sys.argv[1]) as cache:
            cache.put_many([(sys.argv[2], os.stat(sys.argv[2]), sys.argv[3])])
        """
    )
    with StateCache(db) as reader:
        subprocess.run([sys.executable, "-c", script, db, path, DIGEST], check=True)
        assert reader.get(path, os.stat(path)) == DIGEST
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_seventy_thousand_entries_round_trip_in_one_batch(
    cache: StateCache, tmp_path: Path
) -> None:
    st = os.stat(tmp_path)
    items = [(f"/data/set/part-{i:05d}.parquet", st, DIGEST) for i in range(70_000)]
    cache.put_many(items)
    hits = cache.get_many((path, st) for path, st, _ in items)
    assert len(hits) == 70_000
    assert set(hits.values()) == {DIGEST}


@pytest.mark.parametrize("others", [0, 20_000])
def test_a_big_lookup_finds_the_same_hits_by_folder_range_or_by_lists(
    cache: StateCache, tmp_path: Path, others: int
) -> None:
    """Thousands of paths of one folder are read as a key range, capped: a folder whose
    rows are mostly other files' (``others``) goes back to the lists. Either way only the
    wanted paths with their current stat are hits, not a sibling folder's rows
    (``/data/set-b`` sorts inside a naive ``/data/set`` prefix) or a stale stat."""
    st = os.stat(tmp_path)
    stale = os.stat_result((*tuple(st)[:8], 0, 0), {"st_mtime_ns": st.st_mtime_ns + 1})
    wanted = [f"/data/set/{i % 7}/part-{i:05d}" for i in range(3_000)]
    cache.put_many([(p, stale if i % 10 == 0 else st, DIGEST) for i, p in enumerate(wanted)])
    cache.put_many([(f"/data/set/old/{i}", st, DIGEST) for i in range(others)])
    cache.put_many([(f"/data/set-b/{i % 7}/part-{i:05d}", st, DIGEST) for i in range(3_000)])
    hits = cache.get_many((path, st) for path in [*wanted, "/data/set/missing"])
    assert set(hits) == {p for i, p in enumerate(wanted) if i % 10}


def test_huge_inode_numbers_fit(cache: StateCache, tmp_path: Path) -> None:
    st = os.stat_result((0o100644, 2**64 - 5, 0, 1, 0, 0, 10, 0, 0, 0), {"st_mtime_ns": 7})
    cache.put_many([("/x", st, DIGEST)])
    assert cache.get("/x", st) == DIGEST
