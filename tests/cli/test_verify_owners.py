"""verify names the versions, datasets and run artifacts that own a damaged digest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import modelyard
from modelyard.cli.main import app
from modelyard.services.registry import Registry
from modelyard.storage.sql import repository as repo


def test_owners_of_digests_query(reg: Registry, model_dir: Path, tmp_path: Path) -> None:
    v1 = reg.register("fraud", model_dir)
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    ds = reg.register_dataset("customers", tmp_path / "data.csv")
    with reg.db.read() as conn:
        assert repo.owners_of_digests(conn, [v1.digest, "blake3:" + "0" * 64]) == [
            (v1.digest, "dir", "models:/fraud/1")]
        every = repo.owners_of_digests(conn)
    assert (ds.digest, "file", "datasets:/customers/1") in every
    assert (v1.digest, "dir", "models:/fraud/1") in every


@pytest.fixture
def registered(cli_home: Path, model_dir: Path) -> tuple[Registry, str]:
    reg = modelyard.connect(home=cli_home)
    reg.register("fraud", model_dir)
    reg.register("fraud", model_dir, description="same bytes, second version")
    weights = reg.store.get_manifest(reg.get_version("fraud", 1).digest).by_path["weights.bin"]
    return reg, weights.digest


def test_verify_names_owners_of_a_corrupt_file(registered: tuple[Registry, str]) -> None:
    reg, digest = registered
    path = reg.store.local_path(digest)
    os.chmod(path, 0o644)
    Path(path).write_bytes(b"damaged")
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 1
    line = next(x for x in result.stdout.splitlines() if x.startswith("corrupt"))
    assert "models:/fraud/1 (weights.bin)" in line and "models:/fraud/2 (weights.bin)" in line
    body = json.loads(CliRunner().invoke(app, ["verify", "--json"]).stdout)
    assert body["owners"] == {digest: ["models:/fraud/1 (weights.bin)",
                                       "models:/fraud/2 (weights.bin)"]}


def test_verify_names_owner_of_a_missing_version(cli_home: Path, model_dir: Path) -> None:
    reg = modelyard.connect(home=cli_home)
    weights = model_dir / "weights.bin"
    version = reg.register("single", weights)
    reg.store.delete(version.digest)
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 1
    assert f"missing {version.digest} (models:/single/1)" in result.stdout
