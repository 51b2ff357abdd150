"""Finding 6 of issue 9: a committed version survives a power loss.

A power cut cannot be staged in a test, so these tests record what reaches the disk and
in which order: every object file reaches the disk before it is renamed into place (its
own fsync, or a filesystem sync after its last write, the seal), the folders it was renamed
into are fsynced after that, and all of it happens before the metadata transaction that
names the objects commits. SQLite commits sync the WAL (FULL).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import event, text

from modelyard.services.registry import Registry
from modelyard.storage.content import durability
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


@pytest.fixture(params=["syncfs", "no syncfs"])
def disk_log(request: pytest.FixtureRequest,
             monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """``("fsync", path)`` or ``("syncfs", path)`` once a sync has completed, ``("utime",
    path)`` once a file is sealed and ``("rename", target, source)`` once a rename has, in
    that order; one entry per event, so writer threads cannot interleave the halves of an
    event. Run with and without the filesystem sync (which not every system has)."""
    log: list[tuple[str, ...]] = []
    real_fsync, real_replace, real_utime = os.fsync, os.replace, os.utime
    real_syncfs = durability.sync_filesystem
    available = request.param == "syncfs"

    def sync_filesystem(path: str) -> bool:
        if not available:
            return False
        assert real_syncfs(path)
        log.append(("syncfs", path))
        return True

    def utime(path: str, *args: object, **kwargs: object) -> None:
        real_utime(path, *args, **kwargs)  # type: ignore[arg-type]
        log.append(("utime", os.fspath(path)))

    def fsync(fd: int) -> None:
        path = _fd_path(fd)
        real_fsync(fd)
        log.append(("fsync", path))

    def replace(src: str, dst: str, **kwargs: object) -> None:
        real_replace(src, dst, **kwargs)  # type: ignore[arg-type]
        log.append(("rename", os.path.abspath(dst), os.fspath(src)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "utime", utime)
    monkeypatch.setattr(durability, "sync_filesystem", sync_filesystem)
    return log


def _synced(log: list[tuple[str, ...]], source: str) -> bool:
    """Whether ``log`` shows ``source``'s data on disk: fsynced, or sealed (its last write)
    and then a whole filesystem synced."""
    if ("fsync", source) in log:
        return True
    sealed = [i for i, event in enumerate(log) if event == ("utime", source)]
    return bool(sealed) and any(event[0] == "syncfs" for event in log[sealed[-1] + 1:])


def _check_durable_before(log: list[tuple[str, ...]], objects: Path, end: int) -> int:
    """Every object renamed into ``objects`` before ``end`` reached the disk before its
    rename and its folder after; returns how many objects were checked."""
    checked = 0
    for i, (what, path, *source) in enumerate(log[:end]):
        if what != "rename" or not path.startswith(str(objects) + os.sep):
            continue
        assert _synced(log[:i], source[0]), f"{path} was renamed before its data was synced"
        assert ("fsync", os.path.dirname(path)) in log[i + 1:end], (
            f"{path}'s folder entry was not synced before the commit")
        checked += 1
    return checked


def test_register_syncs_objects_and_folders_before_the_commit(
    registry_url: str, tmp_path: Path, model_dir: Path, disk_log: list[tuple[str, ...]]
) -> None:
    objects = tmp_path / "objects"
    reg = Registry(Database(registry_url), ObjectStore(str(objects)), user="alice")
    commits: list[int] = []
    event.listen(reg.db.engine, "commit", lambda _conn: commits.append(len(disk_log)))
    try:
        reg.register("fraud", model_dir)
    finally:
        reg.close()
    stored = sum(len(files) for _root, _dirs, files in os.walk(objects))
    assert stored >= 4  # three files and a manifest
    version_commit = commits[-1]
    assert _check_durable_before(disk_log, objects, version_commit) >= 4
    assert ("fsync", str(objects)) in disk_log[:version_commit]  # new prefix folders


def test_a_large_file_is_synced_too(tmp_path: Path, disk_log: list[tuple[str, ...]]) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))  # past the in-memory path: the kernel-copy path
    store = ObjectStore(str(tmp_path / "objects"))
    store.put_file(big)
    assert _check_durable_before(disk_log, tmp_path / "objects", len(disk_log)) == 1


def test_sqlite_commits_are_durable_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'registry.db'}")
    with db.read() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    db.dispose()
