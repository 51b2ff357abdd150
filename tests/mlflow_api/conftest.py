"""MLflow API fixtures: the server's (in-process app, live uvicorn server), and the
unmodified ``mlflow`` client in a virtual environment of its own, since its pins are not
ours.

The environment (``mlflow`` with its tracking server, plus what its sklearn and pyfunc
flavors import) is made once per machine under ``~/.cache/modelyard-tests``
(``MODELYARD_TEST_CACHE``), which takes a few minutes from PyPI; later runs reuse it. It
is built under a lock and marked complete last, so parallel workers wait for one install
and an interrupted one is redone.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.conftest import (  # the server's fixtures, shared
    LiveServer,
    Served,
    add_user,
    bearer,
    live_server,
    serve,
    served,
    start_server,
)

__all__ = ["LiveServer", "Served", "add_user", "bearer", "live_server", "serve", "served",
           "start_server"]

MLFLOW_PACKAGES = ["mlflow==3.17.2", "numpy==2.4.6", "pandas==3.1.1",
                   "scikit-learn==1.9.1"]


def _cache() -> Path:
    root = os.environ.get("MODELYARD_TEST_CACHE") or Path.home() / ".cache" / "modelyard-tests"
    return Path(root)


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The Python of a virtual environment with the pinned MLflow client."""
    cache = _cache()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / MLFLOW_PACKAGES[0].replace("==", "-")
    complete = target / ".complete"  # written last: without it the folder is rebuilt
    with open(cache / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not complete.exists():
            shutil.rmtree(target, ignore_errors=True)
            try:
                subprocess.run([sys.executable, "-m", "venv", str(target)], check=True)
                subprocess.run([str(target / "bin" / "pip"), "install", "-q",
                                *MLFLOW_PACKAGES], check=True, timeout=1200)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as failed:
                if os.environ.get("CI"):
                    pytest.fail(f"could not install the MLflow client: {failed}")
                pytest.skip(f"could not install the MLflow client: {failed}")
            complete.write_text("\n".join(MLFLOW_PACKAGES) + "\n")
    return target / "bin" / "python"


class MlflowRunner:
    """Runs a script with the MLflow client against a server, as a user with a token."""

    def __init__(self, python: Path, server: LiveServer, workdir: Path) -> None:
        self.python, self.server, self.workdir = python, server, workdir

    def __call__(self, script: str, token: str | None = None) -> Any:
        """The JSON the script prints last (``emit(value)``); a failing script fails
        the test with its output."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MLFLOW_", "MODELYARD_", "VIRTUAL_ENV", "PYTHON"))}
        env.update(MLFLOW_TRACKING_URI=self.server.url,
                   MLFLOW_TRACKING_TOKEN=token or self.server.token,
                   MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
                   MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="60",
                   HOME=str(self.workdir))
        prelude = ("import json, sys\n"
                   "def emit(value):\n"
                   "    print('RESULT ' + json.dumps(value), flush=True)\n")
        done = subprocess.run([str(self.python), "-c", prelude + textwrap.dedent(script)],
                              cwd=self.workdir, env=env, capture_output=True, text=True,
                              timeout=600)
        if done.returncode != 0:
            pytest.fail(f"the MLflow script failed:\n{done.stdout}\n{done.stderr[-6000:]}")
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        return json.loads(lines[-1][len("RESULT "):]) if lines else None


@pytest.fixture
def mlflow_client(mlflow_python: Path, live_server: LiveServer,
                  tmp_path: Path) -> Iterator[MlflowRunner]:
    workdir = tmp_path / "mlflow-user"
    workdir.mkdir()
    yield MlflowRunner(mlflow_python, live_server, workdir)
