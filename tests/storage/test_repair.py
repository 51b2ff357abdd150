"""Finding 4 of issue 9: storing the original again, or ``verify --repair``, repairs.

One flipped byte in a stored object used to survive a re-register (the store skipped
objects it already had), so the "fix" made a new version pointing at corrupt bytes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.storage.content.objects import ObjectStore


def _cli(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return json.loads(result.stdout) if "--json" in args else result


def _object_of(home: Path, digest: str) -> Path:
    return Path(ObjectStore(str(home / "objects")).local_path(digest))


def _flip_a_byte(path: Path) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))
    os.chmod(path, 0o444)


def _weights_digest(home: Path, digest: str) -> str:
    manifest = ObjectStore(str(home / "objects")).get_manifest(digest)
    return manifest.by_path["weights.bin"].digest


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_registering_the_original_again_repairs_the_object(
    cli_home: Path, model_dir: Path, tmp_path: Path, damage: str
) -> None:
    v1 = _cli("register", "fraud", str(model_dir), "--json")
    weights = _object_of(cli_home, _weights_digest(cli_home, v1["digest"]))
    if damage == "flip":
        _flip_a_byte(weights)
    elif damage == "truncate":
        os.chmod(weights, 0o644)
        os.truncate(weights, 10)
    else:
        weights.unlink()
    assert not _cli("verify", "--json", code=1)["ok"]

    v2 = _cli("register", "fraud", str(model_dir), "--json")  # "store the original again"
    assert v2["digest"] == v1["digest"]
    assert _cli("verify", "--json")["ok"]
    _cli("download", "models:/fraud/1", "-o", str(tmp_path / "out"))
    assert (tmp_path / "out" / "weights.bin").read_bytes() == (
        model_dir / "weights.bin").read_bytes()


def test_re_registering_intact_content_does_not_rewrite_it(
    cli_home: Path, model_dir: Path
) -> None:
    v1 = _cli("register", "fraud", str(model_dir), "--json")
    weights = _object_of(cli_home, _weights_digest(cli_home, v1["digest"]))
    before = weights.stat()
    _cli("register", "fraud", str(model_dir))
    after = weights.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_verify_repair_from_the_original_folder(cli_home: Path, model_dir: Path) -> None:
    v1 = _cli("register", "fraud", str(model_dir), "--json")
    weights = _object_of(cli_home, _weights_digest(cli_home, v1["digest"]))
    _flip_a_byte(weights)
    _object_of(cli_home, v1["digest"]).unlink()  # the manifest too
    report = _cli("verify", "--repair", "--from", str(model_dir), "--json")
    assert report["ok"]
    assert set(report["repaired"]) == {v1["digest"], _weights_digest(cli_home, v1["digest"])}


def test_verify_repair_from_another_store(
    cli_home: Path, model_dir: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    v1 = _cli("register", "fraud", str(model_dir), "--json")
    ObjectStore(str(backup)).put_tree(model_dir)  # e.g. a replica of the store
    weights_digest = _weights_digest(cli_home, v1["digest"])
    _flip_a_byte(_object_of(cli_home, weights_digest))
    report = _cli("verify", "--repair", "--from", f"file://{backup}", "--json")
    assert report["ok"] and report["repaired"] == [weights_digest]


def test_repair_from_a_source_without_the_object_still_fails(
    cli_home: Path, model_dir: Path, tmp_path: Path
) -> None:
    v1 = _cli("register", "fraud", str(model_dir), "--json")
    _flip_a_byte(_object_of(cli_home, _weights_digest(cli_home, v1["digest"])))
    (tmp_path / "other").mkdir()
    report = _cli("verify", "--repair", "--from", str(tmp_path / "other"), "--json", code=1)
    assert report["repaired"] == [] and report["corrupt"]
    _cli("verify", "--repair", code=1)  # --repair needs --from: a one-line error
