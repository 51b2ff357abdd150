"""MLflow API fixtures: the server's (in-process app, live uvicorn server), and the
unmodified ``mlflow`` client in a virtual environment of its own (``environment.py``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlflow_api import environment
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


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The Python of a virtual environment with the pinned MLflow client."""
    try:
        return environment.build()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as failed:
        if os.environ.get("CI"):
            pytest.fail(f"could not install the MLflow client: {failed}")
        pytest.skip(f"could not install the MLflow client: {failed}")


class MlflowRunner:
    """Runs a script with the MLflow client against a tracking server (ours, or a real
    ``mlflow server``), as the user of ``token`` when there is one."""

    def __init__(self, python: Path, url: str, token: str, workdir: Path,
                 server: LiveServer | None = None) -> None:
        self.python, self.url, self.token, self.workdir = python, url, token, workdir
        self._server = server

    @property
    def server(self) -> LiveServer:
        assert self._server is not None, "this runner talks to a real mlflow server"
        return self._server

    def __call__(self, script: str, token: str | None = None) -> Any:
        """The JSON the script prints last (``emit(value)``); a failing script fails
        the test with its output."""
        env = _client_env(self.workdir)
        env.update(MLFLOW_TRACKING_URI=self.url, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
                   MLFLOW_HTTP_REQUEST_TIMEOUT="60")
        if token or self.token:
            env["MLFLOW_TRACKING_TOKEN"] = token or self.token
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


def _client_env(home: Path) -> dict[str, str]:
    """This process's environment without ours or MLflow's settings, telemetry off."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "MODELYARD_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", HOME=str(home))
    return env


@pytest.fixture
def mlflow_client(mlflow_python: Path, live_server: LiveServer,
                  tmp_path: Path) -> Iterator[MlflowRunner]:
    workdir = tmp_path / "mlflow-user"
    workdir.mkdir()
    yield MlflowRunner(mlflow_python, live_server.url, live_server.token, workdir,
                       live_server)


@dataclass
class MlflowServer:
    """A real ``mlflow server`` (SQLite, artifacts served from ``artifacts``) and a client
    script runner on it."""

    url: str
    artifacts: Path
    client: MlflowRunner


@pytest.fixture(scope="module")
def mlflow_server(mlflow_python: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """``mlflow server`` on a loopback port for the module, stopped at its end."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    with open(root / "server.log", "wb") as log:
        process = subprocess.Popen(
            [str(mlflow_python.parent / "mlflow"), "server", "--host", "127.0.0.1",
             "--port", str(port), "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
             "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
            cwd=root, env=_client_env(root), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own group: its uvicorn and job runner stop with it
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("mlflow server did not start:\n"
                            + (root / "server.log").read_text()[-4000:])
            time.sleep(0.5)
        workdir = root / "client"
        workdir.mkdir()
        yield MlflowServer(url, root / "artifacts",
                           MlflowRunner(mlflow_python, url, "", workdir))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)  # nothing of it is kept: a slow shutdown is cut short
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
