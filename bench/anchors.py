"""The anchors (MLflow and DVC) live in their own virtual environment, never in ours.

``bench/.venv-anchors/`` (git-ignored) is created on first use with exact pins and reused
while its pin marker matches; the anchors' code runs there through subprocesses, so their
dependencies never mix with Modelyard's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MLFLOW = "3.17.2"  # newest release installable from this machine's PyPI (3.18.0 lacks skinny)
DVC = "3.67.1"
PINS = (f"mlflow=={MLFLOW}", f"dvc=={DVC}")
VENV = Path(__file__).resolve().parent / ".venv-anchors"


def present(venv: Path = VENV) -> bool:
    """True when the anchors' environment exists with exactly the pinned versions."""
    marker = _marker(venv)
    return marker.exists() and marker.read_text().split() == list(PINS)


def _marker(venv: Path) -> Path:
    return venv / ".bench-pins"


def python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def executable(name: str, venv: Path = VENV) -> Path:
    return venv / "bin" / name


def ensure(venv: Path = VENV) -> Path:
    """Create or update the anchors' environment; returns its Python interpreter."""
    if present(venv):
        return python(venv)
    base = getattr(sys, "_base_executable", sys.executable)
    if not python(venv).exists():
        print(f"creating {venv} (first use: installs {', '.join(PINS)})", file=sys.stderr)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *PINS], check=True, env={**os.environ, "PIP_NO_INPUT": "1"})
    _marker(venv).write_text("\n".join(PINS) + "\n")
    return python(venv)
