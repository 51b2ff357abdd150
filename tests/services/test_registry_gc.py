"""Registry garbage collection: only what nothing references goes, and nothing an upload
in progress (young content, or old content being stored again) still needs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from modelyard.errors import IntegrityError
from modelyard.services.registry import Registry
from modelyard.storage.content.chunking import ChunkPolicy
from modelyard.storage.content.object_seal import seal

SMALL = ChunkPolicy(threshold=64 * 1024, avg_size=8192, min_size=2048, max_size=32768)
HOUR = 3600.0


def _age(reg: Registry, digest: str, seconds: float = 2 * HOUR) -> None:
    """Make an object look stored ``seconds`` ago (sealed, as if written then)."""
    seal(reg.store.local_path(digest), digest, at=time.time() - seconds)


def _age_all(reg: Registry) -> None:
    for digest in reg.store.iter_digests():
        _age(reg, digest)


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_unreferenced_old_objects_go_and_everything_referenced_stays(
    reg: Registry, model_dir: Path, tmp_path: Path
) -> None:
    reg.store.chunking = SMALL
    kept_version = reg.register("m", model_dir)
    big = reg.register("big", _file(tmp_path, "w.bin", os.urandom(300_000)))
    deleted = reg.register("m", _file(tmp_path, "old.bin", b"deleted but kept"))
    reg.delete_version("m", deleted.version)
    data = reg.register_dataset("d", _file(tmp_path, "d.csv", b"a,b\n1,2\n"))
    reg.create_experiment("e")
    run = reg.create_run("e")
    artifact = reg.log_run_artifact(run.run_id, _file(tmp_path, "r.txt", b"run output"))
    lost = b"stored by an upload that never registered"
    orphan = reg.store.put_bytes(lost)
    _age_all(reg)
    before = set(reg.store.iter_digests())

    dry = reg.collect_garbage(dry_run=True)
    assert (dry.removed, dry.dry_run) == ([orphan], True)
    assert set(reg.store.iter_digests()) == before
    report = reg.collect_garbage()
    assert report.removed == [orphan] and report.removed_bytes == len(lost)
    assert set(reg.store.iter_digests()) == before - {orphan}
    for digest in (kept_version.digest, big.digest, deleted.digest, data.digest,
                   artifact.digest):
        assert reg.store.verify(digest)
    assert reg.verify().ok
    out = reg.download("models:/big/1", tmp_path / "out")  # every chunk still there
    assert out.stat().st_size == 300_000


def test_young_content_and_what_it_needs_stay(reg: Registry, model_dir: Path) -> None:
    """An upload under way: files stored an hour ago, the manifest just now, no version yet."""
    stored = reg.store.put_tree(model_dir)
    _age_all(reg)
    manifest = reg.store.local_path(stored.digest)
    os.utime(manifest)  # the manifest is new: the upload is still going
    seal(manifest, stored.digest)
    report = reg.collect_garbage()
    assert report.removed == [] and report.young == 4
    assert len(reg.collect_garbage(grace_seconds=0).removed) == 4  # no grace: all of it


def test_old_content_stored_again_is_young_again(reg: Registry, model_dir: Path) -> None:
    """Registering content the store has (a re-upload) must not race a gc."""
    first = reg.register("m", model_dir)
    reg.delete_version("m", 1)
    orphan_tree = reg.store.put_tree(model_dir / "sub")
    _age_all(reg)
    again = reg.store.put_tree(model_dir / "sub")  # skipped as present, but refreshed
    assert again.digest == orphan_tree.digest
    assert reg.collect_garbage().removed == []
    assert reg.store.verify(first.digest)


def test_a_registered_folder_whose_manifest_cannot_be_read_stops_the_gc(
    reg: Registry, model_dir: Path
) -> None:
    version = reg.register("m", model_dir)
    os.unlink(reg.store.local_path(version.digest))
    _age_all(reg)
    with pytest.raises(IntegrityError, match="refusing"):
        reg.collect_garbage()
    assert len(list(reg.store.iter_digests())) == 3  # its files are all still there
