"""``modelyard audit --since --until``: the command line's window on the audit log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli.main import app


def test_audit_lists_the_events_between_since_and_until(
        registry_url: str, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELYARD_REGISTRY_URI", registry_url)
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, ["--user", "ana", *args])
        assert result.exit_code == code, result.output
        return result.output

    for _ in range(3):
        run("register", "m", str(model_dir))
    every = json.loads(run("audit", "--json"))
    since, until = every[1]["at"], every[-1]["at"]
    window = json.loads(run("audit", "--since", since, "--until", until, "--json"))
    assert window == [e for e in every if since <= e["at"] < until] and window
    assert "invalid time" in run("audit", "--until", "soon", code=1)
    assert "only for listing" in run("audit", "verify", "--until", until, code=2)
