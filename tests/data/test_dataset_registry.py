"""Named dataset versions in the registry (SQLite and PostgreSQL) and lineage links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gitdata import write_tree

from modelyard import data
from modelyard.errors import InvalidInput, NotFound
from modelyard.services.registry import Registry


def test_register_numbers_versions_and_get_downloads_verified(
    reg: Registry, tmp_path: Path
) -> None:
    write_tree(tmp_path / "customers", {"a.csv": "id\n1\n", "part/b.csv": "id\n2\n"})
    v1 = reg.register_dataset("customers", tmp_path / "customers", description="first")
    write_tree(tmp_path / "customers", {"a.csv": "id\n1\n3\n"})
    v2 = reg.register_dataset("customers", tmp_path / "customers")
    assert (v1.uri, v2.uri) == ("datasets:/customers/1", "datasets:/customers/2")
    assert v1.digest != v2.digest and v1.file_count == 2 and v1.kind == "dir"
    assert reg.get_dataset("datasets:/customers").version == 2
    assert reg.get_dataset("customers", 1).description == "first"
    assert [d.version for d in reg.list_datasets("customers")] == [1, 2]
    out = reg.download_dataset("datasets:/customers/1", tmp_path / "out")
    assert (out / "a.csv").read_text() == "id\n1\n" and (out / "part/b.csv").exists()
    events = [e for e in reg.audit() if e.action == "dataset.register"]
    assert [e.after["version"] for e in events if e.after] == [1, 2]
    with pytest.raises(NotFound, match="version 9 of dataset 'customers'"):
        reg.get_dataset("datasets:/customers/9")
    with pytest.raises(NotFound, match="dataset 'nope' not found"):
        reg.get_dataset("datasets:/nope/1")
    with pytest.raises(InvalidInput):
        reg.get_dataset("datasets:/customers/x")


def test_register_from_a_pointer_file_uses_the_workspace_cache(
    reg: Registry, repo: Path, tmp_path: Path
) -> None:
    write_tree(repo, {"data/train.csv": "x,y\n1,2\n"})
    data.add("data/train.csv")
    os.remove(repo / "data/train.csv")  # only the cache has it now
    found = reg.register_dataset("train", "data/train.csv.yard")
    assert found.kind == "file" and found.artifact_name == "train.csv"
    path = reg.download_dataset(found.uri, tmp_path / "got")
    assert path.read_text() == "x,y\n1,2\n"


def test_lineage_records_digests_names_and_versions(
    reg: Registry, repo: Path, model_dir: Path
) -> None:
    write_tree(repo, {"data/train.csv": "a\n1\n", "data/raw/r.txt": "r"})
    data.add("data/train.csv")
    customers = reg.register_dataset("customers", repo / "data/raw")
    version = reg.register("fraud", model_dir, datasets=[
        "data/train.csv.yard", "datasets:/customers/1", "data/raw"])
    recorded = version.lineage["datasets"]
    assert [d["digest"] for d in recorded] == [
        reg.resolve_dataset_input("data/train.csv")["digest"], customers.digest,
        customers.digest]
    assert recorded[0]["name"] is None and recorded[0]["source"] == "data/train.csv.yard"
    assert (recorded[1]["name"], recorded[1]["version"]) == ("customers", 1)
    assert (recorded[2]["name"], recorded[2]["version"]) == ("customers", 1)
    with pytest.raises(InvalidInput, match="neither an existing path"):
        reg.register("fraud", model_dir, datasets=["missing.csv"])
