"""``modelyard gc`` counts first, asks, and removes only unreferenced old objects."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner, Result

import modelyard
from modelyard.cli.main import app
from modelyard.storage.content.object_seal import seal


def run(*args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(app, list(args))
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_gc_counts_asks_and_removes_only_garbage(cli_home: Path, model_dir: Path) -> None:
    run("register", "m", str(model_dir))
    reg = modelyard.open_embedded(modelyard.Settings.resolve(home=cli_home))
    orphan = reg.store.put_bytes(b"an upload that never registered")
    for digest in reg.store.iter_digests():
        seal(reg.store.local_path(digest), digest, at=time.time() - 7200)
    dry = json.loads(run("gc", "--dry-run", "--json").stdout)
    assert (dry["removed"], dry["dry_run"]) == ([orphan], True)
    refused = run("gc", ok=False)  # no terminal to confirm on, no --yes
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    done = json.loads(run("gc", "--yes", "--json").stdout)
    assert done["removed"] == [orphan] and not done["dry_run"]
    assert "removed 0 object(s)" in run("gc", "--yes").stdout
    assert run("download", "models:/m/1", "-o", str(cli_home / "out")).exit_code == 0
    reg.close()
