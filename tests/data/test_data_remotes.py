"""push / fetch / pull through folder and S3 remotes, status and gc against them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from gitdata import commit, git, read_tree, write_tree

from modelyard import data
from modelyard.errors import InvalidInput, NotFound, StorageUnavailable
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.objects import ObjectStore


def _dataset(repo: Path) -> dict[str, bytes]:
    write_tree(repo, {"data/big.bin": bytes(range(256)) * 4096, "data/set/a.txt": "a",
                      "data/set/deep/b.txt": "b", "data/set/c.txt": "a"})
    data.add("data/big.bin", "data/set")
    commit(repo, "data")
    return read_tree(repo / "data")


def _wipe(repo: Path, names: tuple[str, ...] = ("big.bin", "set")) -> None:
    shutil.rmtree(repo / ".modelyard" / "cache")
    (repo / ".modelyard" / "state.db").unlink()
    for name in names:
        target = repo / "data" / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def _round_trip(repo: Path, url: str, options: dict[str, Any]) -> ObjectStore:
    expected = _dataset(repo)
    data.remote_add("origin", url, default=True, options=options)
    assert data.status().not_pushed == ["data/big.bin", "data/set"]
    pushed = data.push(jobs=4)
    # 4 distinct files (a.txt and c.txt share content) → 3 file objects + 1 manifest + big.bin
    assert (pushed.transferred, pushed.already_present) == (4, 0)
    assert data.status().clean
    assert data.push().transferred == 0
    _wipe(repo)
    assert data.status().missing == ["data/big.bin", "data/set"]
    fetched, checked = data.pull()
    assert fetched.transferred == 4 and checked.files_written == 4
    assert read_tree(repo / "data") == expected
    return ObjectStore(url, options)


def test_folder_remote_round_trip(repo: Path, tmp_path: Path) -> None:
    store = _round_trip(repo, str(tmp_path / "remote"), {})
    assert len(list(store.iter_digests())) == 4


@pytest.mark.s3
def test_s3_remote_round_trip(repo: Path, s3_location: Any) -> None:
    store = _round_trip(repo, s3_location.url, {"endpoint_url": s3_location.endpoint_url})
    assert len(list(store.iter_digests())) == 4


def test_relative_folder_remote_is_relative_to_the_repository(repo: Path) -> None:
    _dataset(repo)
    data.remote_add("shared", "../shared-remote")
    data.push()
    assert any((repo.parent / "shared-remote").rglob("*"))


def test_one_changed_file_in_ten_thousand_pushes_one_object_and_the_manifest(
    repo: Path, tmp_path: Path
) -> None:
    files = {f"data/many/{i // 100:03d}/{i:05d}.txt": f"row {i}\n" for i in range(10_000)}
    write_tree(repo, files)
    data.add("data/many")
    remote = tmp_path / "remote"
    data.remote_add("origin", str(remote), default=True)
    assert data.push().transferred == 10_001
    write_tree(repo, {"data/many/042/04242.txt": "changed\n"})
    data.add("data/many")
    before = set(ObjectStore(str(remote)).iter_digests())
    report = data.push()
    after = set(ObjectStore(str(remote)).iter_digests())
    assert report.transferred == 2 and len(after - before) == 2
    assert report.already_present == 9_999


def test_push_and_pull_of_many_small_files_sync_in_batches_not_per_file(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder remote (and the cache, on pull) gets small objects in staged batches: a
    sync per batch and one per object folder, where an fsync per file and another per
    folder entry cost about 2 x 2.7 ms a file here."""
    write_tree(repo, {f"data/set/{i:03d}.txt": f"row {i}\n" for i in range(300)})
    data.add("data/set")
    data.remote_add("origin", str(tmp_path / "remote"), default=True)
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    assert data.push().transferred == 301
    assert 0 < len(fsyncs) < 300
    fsyncs.clear()
    _wipe(repo, ("set",))
    fetched, checked = data.pull()
    assert fetched.transferred == 301 and checked.files_written == 300
    assert 0 < len(fsyncs) < 300
    assert data.status().clean


def test_status_reports_each_kind_of_difference(repo: Path, tmp_path: Path, ws: Workspace) -> None:
    write_tree(repo, {"m.txt": "m", "gone.txt": "g", "uncached.txt": "u", "fine.txt": "f"})
    data.add("m.txt", "gone.txt", "uncached.txt", "fine.txt")
    data.remote_add("origin", str(tmp_path / "remote"), default=True)
    data.push("fine.txt", "m.txt", "gone.txt")
    write_tree(repo, {"m.txt": "modified"})
    (repo / "gone.txt").unlink()
    ws.cache.delete(ws.read_pointer("uncached.txt.yard").pointer.digest)
    report = data.status()
    assert report.modified == ["m.txt"]
    assert report.missing == ["gone.txt"]
    assert report.not_in_cache == ["uncached.txt"]
    assert report.not_pushed == ["uncached.txt"]
    assert data.status(cloud=True).not_pushed == ["uncached.txt"]
    assert data.status("fine.txt").clean


def test_missing_object_on_remote_and_unreachable_remote_are_clear_errors(
    repo: Path, tmp_path: Path
) -> None:
    _dataset(repo)
    data.remote_add("empty", str(tmp_path / "empty"), default=True)
    _wipe(repo)
    with pytest.raises(NotFound, match="not in the store"):
        data.pull()
    assert not (repo / "data" / "big.bin").exists()
    data.remote_add("down", "s3://bucket/x", options={
        "endpoint_url": "http://127.0.0.1:9",
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1}})
    with pytest.raises(StorageUnavailable):
        data.fetch("data/big.bin", remote="down")
    with pytest.raises(NotFound, match="remote 'nope' not found"):
        data.push(remote="nope")
    with pytest.raises(InvalidInput, match="invalid remote name"):
        data.remote_add("bad name", "x")


def test_gc_dry_run_real_and_all_commits(repo: Path, ws: Workspace, tmp_path: Path) -> None:
    write_tree(repo, {"f.txt": "v1"})
    data.add("f.txt")
    commit(repo, "v1")
    old = ws.read_pointer("f.txt.yard").pointer.digest
    write_tree(repo, {"f.txt": "v2"})
    data.add("f.txt")
    commit(repo, "v2")
    assert data.gc(all_commits=True, grace=0).removed == []
    assert data.gc(grace=0).removed == []  # the default keeps every commit's data
    dry = data.gc(workspace=True, dry_run=True, grace=0)
    assert dry.removed == [old] and ws.cache.exists(old)
    data.gc(workspace=True, grace=0)
    assert not ws.cache.exists(old)
    git(repo, "checkout", "-q", "HEAD~1")
    with pytest.raises(NotFound, match="not in the cache"):
        data.checkout()


def test_gc_on_a_remote_removes_only_unreferenced_objects(repo: Path, tmp_path: Path) -> None:
    write_tree(repo, {"d/a.txt": "1", "d/b.txt": "2"})
    data.add("d")
    commit(repo, "v1")
    data.remote_add("origin", str(tmp_path / "remote"), default=True)
    data.push()
    write_tree(repo, {"d/b.txt": "3"})
    data.add("d")
    commit(repo, "v2")
    data.push()
    assert data.gc(remote="origin", only_this_clone=True, grace=0).removed == []
    report = data.gc(remote="origin", only_this_clone=True, workspace=True, grace=0)
    assert len(report.removed) == 2  # the old b.txt and the old manifest
    assert data.status(cloud=True).clean


def test_diff_between_revisions_and_against_the_working_tree(repo: Path) -> None:
    write_tree(repo, {"d/a.txt": "1", "d/b.txt": "2", "one.txt": "x"})
    data.add("d", "one.txt")
    commit(repo, "v1")
    write_tree(repo, {"d/b.txt": "changed", "d/c.txt": "new", "two.txt": "y"})
    (repo / "d/a.txt").unlink()
    data.add("d", "two.txt")
    commit(repo, "v2")
    report = data.diff("HEAD~1", "HEAD")
    assert report.added == ["d/c.txt", "two.txt"]
    assert report.removed == ["d/a.txt"]
    assert report.modified == ["d/b.txt"]
    assert data.diff().to_dict()["added"] == []
    with pytest.raises(InvalidInput, match="unknown git revision"):
        data.diff("no-such-rev")
