"""The content plane: paths are hashed and stored on the caller's side, and metadata
operations take digests, which they check against the store before anything commits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.domain.content import DataInput, StoredContent
from modelyard.domain.principal import Principal, Role
from modelyard.errors import InvalidInput, PermissionDenied
from modelyard.services.content import LocalContent
from modelyard.services.files import Files
from modelyard.services.registry import Registry
from modelyard.storage.content.hashing import hash_bytes


def _content(reg: Registry, path: Path) -> StoredContent:
    """What a client does before a metadata call: store the path, keep the digests."""
    stored = LocalContent(reg.store).put_tree(path)
    return StoredContent(stored.digest, stored.kind, stored.size, stored.file_count,
                         path.name if stored.kind == "file" else "")


def test_a_version_over_uploaded_content_is_the_version_register_makes(
    reg: Registry, model_dir: Path
) -> None:
    by_digest = reg.create_version("m", _content(reg, model_dir), params={"lr": 0.1})
    by_path = reg.register("m", model_dir, params={"lr": 0.1})
    assert (by_digest.digest, by_digest.size, by_digest.file_count) == (
        by_path.digest, by_path.size, by_path.file_count)
    assert [by_digest.version, by_path.version] == [1, 2]


def test_content_missing_from_the_store_is_refused_and_nothing_commits(reg: Registry) -> None:
    ghost = StoredContent(hash_bytes(b"never stored"), "file", 12, 1, "w.bin")
    with pytest.raises(InvalidInput, match="not in the store") as caught:
        reg.create_version("m", ghost)
    assert caught.value.hint and "store the content first" in caught.value.hint
    assert reg.list_models() == [] and reg.audit() == []
    reg.create_experiment("e")
    run = reg.create_run("e")
    with pytest.raises(InvalidInput, match="not in the store"):
        reg.record_run_artifact(run.run_id, ghost, "model")
    with pytest.raises(InvalidInput, match="not in the store"):
        reg.create_dataset_version("d", ghost)
    assert reg.get_run(run.run_id).artifacts == [] and reg.list_datasets() == []


def test_a_claimed_size_or_file_count_that_the_store_contradicts_is_refused(
    reg: Registry, model_dir: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"x" * 100)
    real = _content(reg, weights)
    with pytest.raises(InvalidInput, match="100 bytes"):
        reg.create_version("m", StoredContent(real.digest, "file", 99, 1, "w.bin"))
    tree = _content(reg, model_dir)
    with pytest.raises(InvalidInput, match="3 file"):
        reg.create_version("m", StoredContent(tree.digest, "dir", tree.size, 2))
    with pytest.raises(InvalidInput, match="not a readable dir"):  # a file is no manifest
        reg.create_version("m", StoredContent(real.digest, "dir", 100, 1))


def test_a_directory_with_a_file_missing_from_the_store_is_refused(
    reg: Registry, model_dir: Path
) -> None:
    tree = _content(reg, model_dir)
    entry = reg.store.get_manifest(tree.digest).entries[0]
    os.unlink(reg.store.local_path(entry.digest))
    with pytest.raises(InvalidInput, match="1 file"):
        reg.create_version("m", tree)


def test_kinds_and_names_are_checked_where_the_record_is_made() -> None:
    with pytest.raises(InvalidInput, match="kind"):
        StoredContent("blake3:" + "0" * 64, "link", 1, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="no file name"):
        StoredContent("blake3:" + "0" * 64, "dir", 1, 1, "x")


def test_data_inputs_are_described_on_the_caller_side_and_matched_by_digest(
    reg: Registry, tmp_path: Path, model_dir: Path
) -> None:
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    registered = reg.register_dataset("train", data)
    described = reg.resolve_dataset_input(data)
    assert (described["digest"], described["name"], described["version"]) == (
        registered.digest, "train", 1)
    # a remote caller sends the description; the registry looks the name up itself
    claim = DataInput(registered.digest, registered.size, 1, "somewhere/else.csv")
    assert reg.dataset_input(claim)["name"] == "train"
    with pytest.raises(InvalidInput, match="datasets:/"):
        reg.dataset_input(str(data))  # a path is the content plane's to describe
    version = reg.register("m", model_dir, datasets=[data, "datasets:/train/1"])
    assert [d["version"] for d in version.lineage["datasets"]] == [1, 1]


def test_the_content_plane_asks_permission_before_it_stores_anything(
    reg: Registry, model_dir: Path
) -> None:
    viewer = Registry(reg.db, reg.store, principal=Principal("vic", frozenset({Role.VIEWER})))
    with pytest.raises(PermissionDenied, match="vic"):
        viewer.register("m", model_dir)
    assert list(reg.store.iter_digests()) == []


def test_the_content_plane_runs_over_any_metadata_api(reg: Registry, model_dir: Path) -> None:
    """``Files`` needs only the metadata operations and a content store: the remote client
    gives it an HTTP client for both."""
    files = Files(reg, LocalContent(reg.store))
    version = files.register("m", model_dir)
    out = files.download(version.uri, Path(reg.store.root).parent / "out")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "sub", "weights.bin"]
