"""End to end in a real git repository: add, commit, change, go back, check out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from gitdata import commit, git, read_tree, write_tree

from modelyard import data
from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.services.data import scan
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.hashing import hash_bytes
from modelyard.storage.content.manifest import ScannedFile
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.index import state_cache


def test_checkout_restores_old_bytes_of_files_and_folders(repo: Path) -> None:
    write_tree(repo, {"data/train.csv": b"a,b\n1,2\n", "data/images/x.bin": b"\x00\x01",
                      "data/images/sub/y.bin": b"y1"})
    data.add("data/train.csv", "data/images")
    assert (repo / "data/train.csv.yard").exists() and (repo / "data/images.yard").exists()
    assert {"/train.csv", "/images"} <= set((repo / "data/.gitignore").read_text().split())
    commit(repo, "v1")
    v1 = read_tree(repo / "data")
    write_tree(repo, {"data/train.csv": b"a,b\n1,2\n3,4\n", "data/images/sub/y.bin": b"y2",
                      "data/images/z.bin": b"new"})
    os.remove(repo / "data/images/x.bin")
    data.add("data/train.csv", "data/images")
    commit(repo, "v2")
    v2 = read_tree(repo / "data")

    git(repo, "checkout", "-q", "HEAD~1")
    report = data.checkout()
    assert sorted(report.restored) == ["data/images", "data/train.csv"]
    assert read_tree(repo / "data") == v1
    assert data.status().clean

    git(repo, "checkout", "-q", "main")
    data.checkout()
    assert read_tree(repo / "data") == v2
    assert not (repo / "data/images/x.bin").exists()


def test_no_op_add_changes_nothing_and_untracked_git_is_clean(repo: Path) -> None:
    write_tree(repo, {"d/f.txt": "x"})
    first = data.add("d")
    commit(repo, "v1")
    again = data.add("d")
    assert first[0].changed and not again[0].changed
    assert git(repo, "status", "--porcelain") == ""


def test_bytes_are_never_normalised(repo: Path) -> None:
    raw = b"line1\r\nline2\rend\x00\xff"
    write_tree(repo, {"raw.bin": raw})
    data.add("raw.bin")
    os.remove(repo / "raw.bin")
    data.checkout()
    assert (repo / "raw.bin").read_bytes() == raw


def test_paths_outside_the_tree_and_bad_pointers_are_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    with pytest.raises(InvalidInput, match="outside the working tree"):
        data.add(outside)
    with pytest.raises(InvalidInput, match="does not exist"):
        data.add("nope.txt")
    (repo / "broken.yard").write_text("format: 1\nhash: blake3\nkind: file\nsize: 1\n")
    with pytest.raises(InvalidInput, match=r"broken\.yard has no digest"):
        data.checkout()


def test_corrupted_cache_object_is_detected_on_checkout(repo: Path, ws: Workspace) -> None:
    write_tree(repo, {"d/a.txt": "alpha", "d/b.txt": "beta"})
    added = data.add("d")[0]
    manifest = ws.cache.get_manifest(added.tracked.pointer.digest)
    victim = ws.cache.local_path(manifest.by_path["b.txt"].digest)
    os.chmod(victim, 0o644)
    Path(victim).write_bytes(b"evil")
    os.remove(repo / "d/b.txt")
    with pytest.raises(IntegrityError, match=r"d/b\.txt") as caught:
        data.checkout()
    assert "corrupted" in caught.value.message
    assert not (repo / "d/b.txt").exists()


def test_local_changes_not_in_cache_are_kept_unless_forced(repo: Path) -> None:
    write_tree(repo, {"f.txt": "committed"})
    data.add("f.txt")
    write_tree(repo, {"f.txt": "precious edit"})
    with pytest.raises(InvalidInput, match="local changes"):
        data.checkout()
    assert (repo / "f.txt").read_text() == "precious edit"
    data.checkout(force=True)
    assert (repo / "f.txt").read_text() == "committed"


def test_missing_cache_content_says_to_pull(repo: Path, ws: Workspace) -> None:
    write_tree(repo, {"f.txt": "x"})
    added = data.add("f.txt")[0]
    ws.cache.delete(added.tracked.pointer.digest)
    os.remove(repo / "f.txt")
    with pytest.raises(NotFound, match="not in the cache") as caught:
        data.checkout()
    assert "pull" in (caught.value.hint or "")


def test_hardlinked_checkout_is_read_only_and_unprotect_keeps_cache_intact(
    repo: Path, ws: Workspace
) -> None:
    ws.config.links = ["hardlink", "copy"]  # opt-in since hardlinks became unsafe by default
    ws.save_config()
    write_tree(repo, {"d/a.txt": "original"})
    digest = data.add("d")[0].tracked.pointer.digest
    os.remove(repo / "d/a.txt")
    report = data.checkout()
    assert report.links == {"hardlink": 1}
    target = repo / "d/a.txt"
    assert os.stat(target).st_mode & 0o222 == 0
    assert data.unprotect("d") == ["d/a.txt"]
    assert os.stat(target).st_mode & 0o200
    target.write_text("edited")
    entry = ws.cache.get_manifest(digest).by_path["a.txt"]
    assert Path(ws.cache.local_path(entry.digest)).read_text() == "original"
    assert data.status().modified == ["d"]


def _looked_up(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Digests the cache is asked to vouch for, from now on."""
    asked: list[str] = []
    real = ObjectStore.intact_many

    def intact_many(self: ObjectStore, sizes: Any, *args: Any, **kw: Any) -> set[str]:
        asked.extend(sizes)
        return real(self, sizes, *args, **kw)

    monkeypatch.setattr(ObjectStore, "intact_many", intact_many)
    return asked


def test_re_add_after_one_change_looks_up_only_what_the_last_version_lacked(
    repo: Path, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(repo, {f"d/{i}.txt": f"file {i}".encode() for i in range(30)})
    data.add("d")
    (repo / "d/7.txt").write_bytes(b"changed")
    asked = _looked_up(monkeypatch)

    [added] = data.add("d")

    assert added.changed  # the one new file, then the new manifest
    assert asked == [hash_bytes(b"changed"), added.tracked.pointer.digest]
    assert ws.cache.verify(added.tracked.pointer.digest)


@pytest.mark.parametrize("damage", ["deleted", "corrupted"])
def test_re_add_without_the_last_manifest_checks_every_file_and_restores_it(
    repo: Path, ws: Workspace, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """The shortcut trusts a manifest the cache holds intact, nothing less: with the last
    version's manifest gone or damaged, and one of its files' objects gone, re-adding
    after a change looks every file up and stores the missing one again."""
    write_tree(repo, {f"d/{i}.txt": f"file {i}".encode() for i in range(5)})
    [first] = data.add("d")
    old_manifest = ws.cache.local_path(first.tracked.pointer.digest)
    lost = hash_bytes(b"file 3")
    os.remove(ws.cache.local_path(lost))
    if damage == "deleted":
        os.remove(old_manifest)
    else:
        os.chmod(old_manifest, 0o644)
        with open(old_manifest, "r+b") as f:
            f.write(b"[")
    (repo / "d/0.txt").write_bytes(b"changed")
    asked = _looked_up(monkeypatch)

    [added] = data.add("d")

    assert len(set(asked) - {added.tracked.pointer.digest}) == 5 and lost in asked
    assert ws.cache.verify(lost) and ws.cache.verify(added.tracked.pointer.digest)


@pytest.mark.parametrize("strategy", ["symlink", "copy"])
def test_configured_link_strategy_is_used(repo: Path, strategy: str) -> None:
    with Workspace.find(repo) as ws:
        ws.config.links = [strategy]
        ws.save_config()
    write_tree(repo, {"d/a.txt": "one", "d/b.txt": "two"})
    data.add("d")
    for name in ("a.txt", "b.txt"):
        os.remove(repo / "d" / name)
    assert data.checkout().links == {strategy: 2}
    assert (repo / "d/a.txt").is_symlink() == (strategy == "symlink")
    assert data.status().clean
    assert not data.add("d")[0].changed
    assert read_tree(repo / "d") == {"a.txt": b"one", "b.txt": b"two"}


def test_re_add_after_one_change_scans_once_and_hashes_only_that_file(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(repo, {f"d/{i}.txt": f"file {i}".encode() for i in range(50)})
    data.add("d")
    (repo / "d/7.txt").write_bytes(b"changed")
    hashed: list[str] = []
    scans: list[str] = []
    real_hash, real_scan = state_cache.hash_files, scan.scan_directory  # type: ignore[attr-defined]

    def hashing(paths: list[str], workers: int | None = None, **kw: Any) -> list[str]:
        hashed.extend(paths)
        return real_hash(paths, workers, **kw)

    def scanning(*args: Any) -> list[ScannedFile]:
        scans.append(os.fspath(args[0]))
        return real_scan(*args)

    monkeypatch.setattr(state_cache, "hash_files", hashing)
    monkeypatch.setattr(scan, "scan_directory", scanning)

    [added] = data.add("d")

    assert added.changed and [os.path.basename(p) for p in hashed] == ["7.txt"]
    assert len(scans) == 1
    (repo / "d/7.txt").write_bytes(b"edited again, then restored by checkout")
    data.checkout(force=True)
    assert (repo / "d/7.txt").read_bytes() == b"changed"
