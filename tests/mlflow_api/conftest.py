"""MLflow API fixtures: the server's (in-process app, live uvicorn server), and the
unmodified ``mlflow`` client in a virtual environment of its own, since its pins are not
ours.

The environment (``mlflow-skinny`` plus what its sklearn and pyfunc flavors import) is made
once per machine under ``~/.cache/modelyard-tests`` (``MODELYARD_TEST_CACHE``), which takes
about two minutes from PyPI; later runs reuse it. It is built in a temporary folder and
renamed into place when complete, under a lock, so parallel workers and an interrupted
install never see half of one.
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

MLFLOW_PACKAGES = ["mlflow-skinny==3.17.2", "numpy==2.4.6", "pandas==3.1.1",
                   "scikit-learn==1.9.1"]


def _cache() -> Path:
    root = os.environ.get("MODELYARD_TEST_CACHE") or Path.home() / ".cache" / "modelyard-tests"
    return Path(root)


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The Python of a virtual environment with the pinned MLflow client."""
    cache = _cache()
    cache.mkdir(parents=True, exist_ok=True)
    name = "mlflow-" + "-".join(p.replace("==", "-") for p in MLFLOW_PACKAGES[:1])
    target = cache / name
    python = target / "bin" / "python"
    with open(cache / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not python.exists():
            building = cache / f"{name}.building"
            shutil.rmtree(building, ignore_errors=True)
            try:
                subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
                subprocess.run([str(building / "bin" / "pip"), "install", "-q",
                                *MLFLOW_PACKAGES], check=True, timeout=1200)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as failed:
                shutil.rmtree(building, ignore_errors=True)
                if os.environ.get("CI"):
                    pytest.fail(f"could not install the MLflow client: {failed}")
                pytest.skip(f"could not install the MLflow client: {failed}")
            building.rename(target)  # the venv's scripts name their own folder: fix them
            for script in (target / "bin").iterdir():
                if script.is_file() and not script.is_symlink():
                    data = script.read_bytes()
                    if str(building).encode() in data:
                        script.write_bytes(data.replace(str(building).encode(),
                                                        str(target).encode()))
            (target / "pyvenv.cfg").write_text((target / "pyvenv.cfg").read_text().replace(
                str(building), str(target)))
    return python


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
