"""A scanned folder is stored in batches (``storage.content.staged``): its objects appear
only complete, after their batch reached the disk, and a batch that fails or is
interrupted leaves no object and no temporary file behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.errors import IntegrityError
from modelyard.storage.content import durability, staged
from modelyard.storage.content.hashing import SMALL_FILE
from modelyard.storage.content.manifest import Entry, Manifest, ScannedFile, scan_directory
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.index.state_cache import hash_scanned


def _folder(root: Path, count: int, size: int = 300) -> tuple[Manifest, list[ScannedFile]]:
    """``count`` files of distinct content, scanned and hashed as ``data add`` does."""
    for i in range(count):
        (root / f"{i:03d}.bin").write_bytes(i.to_bytes(2, "big") * (size // 2))
    files = scan_directory(root)
    digests = hash_scanned(files, None)
    return Manifest(Entry(f.path, digests[f.abspath], f.size, f.mode) for f in files), files


def _contents(store: ObjectStore) -> list[str]:
    """Everything below the store's root that is not a folder: objects and temporary files."""
    return sorted(name for _, _, names in os.walk(store.root) for name in names)


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "store"), chunked=False)


def test_objects_appear_only_after_their_batch_reached_the_disk(
        tmp_path: Path, store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d").mkdir()
    manifest, files = _folder(tmp_path / "d", 7)
    visible_at_sync: list[int] = []
    real_sync = durability.sync_filesystem

    def sync_filesystem(path: str) -> bool:
        visible_at_sync.append(len(list(store.iter_digests())))
        return real_sync(path)

    monkeypatch.setattr(staged, "_MAX_FILES", 3)
    monkeypatch.setattr(durability, "sync_filesystem", sync_filesystem)
    stored = store.put_listed(manifest, files)
    assert visible_at_sync == [0, 3, 6]  # batches of 3, 3 and 1: none seen before its sync
    assert set(store.iter_digests()) == {e.digest for e in manifest} | {stored.digest}
    assert all(store.verify(e.digest) for e in manifest)


def test_a_file_changed_after_hashing_is_refused_and_its_batch_leaves_nothing(
        tmp_path: Path, store: ObjectStore) -> None:
    (tmp_path / "d").mkdir()
    manifest, files = _folder(tmp_path / "d", 5)
    (tmp_path / "d" / "003.bin").write_bytes(b"edited meanwhile")
    with pytest.raises(IntegrityError, match=r"003\.bin .*probably changed"):
        store.put_listed(manifest, files)
    assert _contents(store) == []  # not the other four objects, no temporary file


@pytest.mark.parametrize("size", [300, SMALL_FILE], ids=["inline", "threads"])
def test_an_interrupted_batch_leaves_no_object(
        tmp_path: Path, store: ObjectStore, monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    (tmp_path / "d").mkdir()
    manifest, files = _folder(tmp_path / "d", 4, size)

    def interrupted(path: str) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(durability, "sync_filesystem", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.put_listed(manifest, files)
    assert _contents(store) == []
    monkeypatch.undo()
    stored = store.put_listed(manifest, files)  # the next add stores it all
    assert store.get_manifest(stored.digest) == manifest


def test_objects_copied_between_stores_go_in_batches_and_their_folders_first(
        tmp_path: Path, store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """What push and pull do between a cache and a folder remote (``put_files``): a few
    syncs for many small objects, not an fsync each, every folder synced before the
    call returns (so a manifest written next names only durable objects), each copy
    re-hashed as it lands."""
    (tmp_path / "d").mkdir()
    manifest, files = _folder(tmp_path / "d", 40)
    source = ObjectStore(str(tmp_path / "source"), chunked=False)
    source.put_listed(manifest, files)
    wanted = {e.digest: (source.local_path(e.digest), e.size) for e in manifest}
    syncs: list[str] = []
    real_sync, real_fsync = durability.sync_filesystem, os.fsync

    def sync_filesystem(path: str) -> bool:
        syncs.append("syncfs")
        return real_sync(path)

    def fsync(fd: int) -> None:
        syncs.append("fsync")
        real_fsync(fd)

    monkeypatch.setattr(durability, "sync_filesystem", sync_filesystem)
    monkeypatch.setattr(os, "fsync", fsync)
    done: list[None] = []
    written = store.put_files(wanted, on_object=lambda: done.append(None))
    assert written == set(wanted) and len(done) == 40
    folders = len({store.local_path(d).rsplit("/", 1)[0] for d in wanted})
    # one sync for the batch, then the object folders (and their parents), not 40 files
    assert syncs.count("syncfs") == 1 and folders <= syncs.count("fsync") <= folders + 2
    assert all(store.verify(d) for d in wanted)
    syncs.clear()
    assert store.put_files(wanted) == set() and syncs == []  # held intact: nothing moves

    victim = next(iter(wanted))
    os.chmod(wanted[victim][0], 0o644)
    Path(wanted[victim][0]).write_bytes(b"rotten")
    other = ObjectStore(str(tmp_path / "other"), chunked=False)
    with pytest.raises(IntegrityError):
        other.put_files({victim: (wanted[victim][0], 6)})
    assert _contents(other) == []
