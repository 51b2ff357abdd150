"""A read command imports only what it needs; arguments read NAME in usage lines; plain
parameters are coerced without Pydantic and still refuse bad values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import modelyard
from modelyard.cli.main import app

_LOADED = """
import json, sys
sys.argv = ["modelyard", *sys.argv[1:]]
from modelyard.cli.main import app
try:
    app()
except SystemExit as exc:
    code = exc.code
sys.stderr.write("MODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""


def _modules_after(args: list[str], home: Path) -> set[str]:
    env = {**os.environ, "MODELYARD_HOME": str(home), "MODELYARD_USER": "alice"}
    done = subprocess.run([sys.executable, "-c", _LOADED, *args], env=env, text=True,
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def test_versions_show_skips_what_a_read_does_not_need(cli_home: Path,
                                                       model_dir: Path) -> None:
    modelyard.connect(home=cli_home).register("fraud", model_dir)
    loaded = _modules_after(["versions", "show", "fraud", "v1"], cli_home)
    assert "sqlalchemy" in loaded  # it did read the registry
    heavy = {"pydantic", "yaml", "rich.progress", "alembic", "cryptography", "boto3", "s3fs"}
    assert heavy & loaded == set()
    assert not {m for m in loaded if m.startswith("modelyard.flavors.")}
    assert "pydantic" not in _modules_after(["--help"], cli_home)


def test_usage_line_names_arguments_plainly(cli_home: Path) -> None:
    shown = CliRunner().invoke(app, ["versions", "show", "--help"]).output
    assert "Usage: modelyard versions show [OPTIONS] NAME REF" in shown
    assert "{NAME}" not in shown and "<str>" not in shown
    optional = CliRunner().invoke(app, ["requests", "list", "--help"]).output
    assert "[NAME]" in optional and "[[" not in optional


def test_plain_coercion_converts_and_refuses(cli_home: Path, model_dir: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["policy", "show", "fraud", "--policy-version", "two"])
    assert bad.exit_code == 2 and "'two' is not a valid integer" in bad.output
    done = runner.invoke(app, ["register", "fraud", str(model_dir), "--tag", "a=1",
                               "--tag", "b=2", "--metric", "auc=0.5", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["tags"] == {"a": "1", "b": "2"}
    shown = runner.invoke(app, ["policy", "show", "fraud", "--policy-version", " 0 ", "--json"])
    assert shown.exit_code == 0, shown.output
