"""The unmodified ``mlflow`` client's own virtual environment, since its pins are not ours.

It holds ``mlflow`` with its tracking server, plus what its sklearn and pyfunc flavors
import, and is made once per machine under ``~/.cache/modelyard-tests``
(``MODELYARD_TEST_CACHE``). From PyPI that takes minutes, so the test session starts the
build in the background as it begins (``python environment.py``) and the fixture that
needs it waits only for what is left. It is built under a lock and marked complete last,
so parallel workers wait for one install and an interrupted one is redone.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

MLFLOW_PACKAGES = ["mlflow==3.17.2", "numpy==2.4.6", "pandas==3.1.1",
                   "scikit-learn==1.9.1"]


def _cache() -> Path:
    root = os.environ.get("MODELYARD_TEST_CACHE") or Path.home() / ".cache" / "modelyard-tests"
    return Path(root)


def _target() -> Path:
    return _cache() / MLFLOW_PACKAGES[0].replace("==", "-")


def _complete() -> Path:
    return _target() / ".complete"  # written last: without it the folder is rebuilt


def build() -> Path:
    """The environment's Python, once it is complete (built here, or by another process
    that holds the lock). Raises ``CalledProcessError``/``TimeoutExpired`` if pip fails."""
    target = _target()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _complete().exists():
            shutil.rmtree(target, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
            subprocess.run([str(target / "bin" / "pip"), "install", "-q", *MLFLOW_PACKAGES],
                           check=True, timeout=1200)
            _complete().write_text("\n".join(MLFLOW_PACKAGES) + "\n")
    return target / "bin" / "python"


def build_in_background() -> None:
    """Start :func:`build` in a process of its own, unless the environment is complete;
    it outlives a short test session and leaves a complete environment or none."""
    if _complete().exists():
        return
    _cache().mkdir(parents=True, exist_ok=True)
    with open(_cache() / f"{_target().name}.log", "ab") as log:
        subprocess.Popen([sys.executable, __file__], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)


if __name__ == "__main__":
    build()
