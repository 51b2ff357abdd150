"""Fixtures for data versioning: a real git repository with a Modelyard workspace."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gitdata import git
from typer.testing import CliRunner

from modelyard.cli.main import app
from modelyard.services.data.workspace import Workspace


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh git repository with ``modelyard data init`` done; the current directory."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    monkeypatch.chdir(root)
    Workspace.init(root).close()
    yield root


@pytest.fixture
def ws(repo: Path) -> Iterator[Workspace]:
    with Workspace.find(repo) as workspace:
        yield workspace



@pytest.fixture
def cli(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``modelyard data ARGS…`` in ``repo``: the parsed JSON with ``--json``, else the result."""
    monkeypatch.setenv("MODELYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELYARD_USER", "alice")
    monkeypatch.delenv("MODELYARD_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MODELYARD_STORE_URI", raising=False)
    runner = CliRunner()

    def invoke(*args: str, code: int = 0, input: str | None = None) -> Any:
        result = runner.invoke(app, ["data", *args], input=input)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return json.loads(result.stdout) if "--json" in args and code == 0 else result

    return invoke
