"""Artifacts that would escape their folder are refused, on the way in and on the way out."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelyard.errors import IntegrityError, InvalidInput
from modelyard.services.registry import Registry
from modelyard.storage.sql.schema import model_versions


def test_symlink_leaving_the_tree_is_refused_at_register(
    reg: Registry, model_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not ship")
    os.symlink(secret, model_dir / "leak")
    with pytest.raises(InvalidInput, match="leak"):
        reg.register("m", model_dir)
    assert reg.list_models() == []


def test_symlink_inside_the_tree_is_stored_as_its_content(
    reg: Registry, model_dir: Path, tmp_path: Path
) -> None:
    os.symlink(model_dir / "config.json", model_dir / "config-link.json")
    version = reg.register("m", model_dir)
    out = reg.download(version.uri, tmp_path / "out")
    assert (out / "config-link.json").read_text() == '{"layers": 3}'
    assert not (out / "config-link.json").is_symlink()


@pytest.mark.parametrize("evil", ["../escaped.txt", "/etc/evil", "a/../../x", "sub\\..\\x"])
def test_download_refuses_a_manifest_that_escapes_the_destination(
    reg: Registry, tmp_path: Path, evil: str
) -> None:
    payload = reg.store.put_bytes(b"payload")
    manifest = json.dumps({"format": 1, "entries": [
        {"path": evil, "digest": payload, "size": 7, "mode": 0o644}]},
        separators=(",", ":"), sort_keys=True).encode()
    digest = reg.store.put_bytes(manifest)
    good = tmp_path / "good.bin"
    good.write_bytes(b"x")
    version = reg.register("m", tmp_path / "good.bin")
    with reg.db.transaction() as conn:  # simulate a forged row pointing at the evil manifest
        conn.execute(model_versions.update().values(digest=digest, artifact_kind="dir",
                                                    artifact_name=""))
    dest = tmp_path / "dest"
    with pytest.raises((InvalidInput, IntegrityError)):
        reg.download(version.uri, dest)
    assert not (tmp_path / "escaped.txt").exists()
    assert not dest.exists() or list(dest.iterdir()) == []
