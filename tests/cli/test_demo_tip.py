"""The demo's closing tip names a command that works from where the demo ran."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("modelyard_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tip_names_the_venv_path_unless_the_shell_finds_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    demo = _demo()
    venv_bin = Path(sys.executable).parent
    beside = venv_bin / "modelyard"
    assert beside.exists()  # the dev install put it next to this interpreter
    monkeypatch.chdir(venv_bin.parent.parent)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    expected = os.path.relpath(beside)
    assert demo.command_path() == expected and not expected.startswith("..")
    assert os.access(expected, os.X_OK)
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")
    assert demo.command_path() == "modelyard"
