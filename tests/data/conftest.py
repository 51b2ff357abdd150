"""Fixtures for data versioning: a real git repository with a Modelyard workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gitdata import git

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

