"""An object missing from the remote on pull names the data that needs it, not only a digest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from gitdata import commit, write_tree

from modelyard import data
from modelyard.errors import NotFound
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.objects import ObjectStore


def test_pull_names_the_file_whose_object_is_missing(repo: Path, tmp_path: Path,
                                                     cli: Any) -> None:
    write_tree(repo, {"d/a.txt": "alpha", "d/b.txt": "beta", "f.bin": b"\0" * 10})
    data.add("d", "f.bin")
    commit(repo, "v1")
    remote = tmp_path / "remote"
    data.remote_add("origin", str(remote), default=True)
    data.push()
    with Workspace.find(repo) as ws:
        digest = next(e.digest for e in ws.cache.get_manifest(
            ws.tracked(["d"])[0].pointer.digest).entries if e.path == "a.txt")
    os.remove(ObjectStore(str(remote)).local_path(digest))
    shutil.rmtree(repo / ".modelyard" / "cache")
    with pytest.raises(NotFound, match=r"^d/a\.txt is missing from remote origin") as caught:
        data.pull()
    assert caught.value.details == {"digest": digest, "path": "d/a.txt"}
    failed = cli("pull", code=1)
    assert "d/a.txt is missing from remote origin" in failed.output
    assert "data push" in failed.output
