"""Scenarios 5 to 9: the model registry, Modelyard embedded against MLflow.

MLflow runs two ways: its Python API straight on a SQLite store (the embedded analogue
of Modelyard) and, where the issue asks for it, through ``mlflow server`` on SQLite, its
normal deployment. A future ``modelyard-server`` column is one more ``Target`` whose
``uri`` comes from a server session, exactly like ``mlflow (server)``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import anchors, datagen
from bench.harness import BenchError, Case, Context, Driver, Steps, empty_dir, tool_env

SERVER_START_TIMEOUT = 180.0


@dataclass(frozen=True)
class Target:
    """One column: a tool, its driver, and how it connects (a session yielding its args)."""

    key: str  # folder-safe name
    tool: str
    family: str
    driver: Driver
    connect: Callable[[Path], AbstractContextManager[dict[str, Any]]]


@contextmanager
def _modelyard_home(folder: Path) -> Iterator[dict[str, Any]]:
    yield {"home": str(folder / "home")}


@contextmanager
def _mlflow_sqlite(folder: Path) -> Iterator[dict[str, Any]]:
    yield {"uri": f"sqlite:///{folder / 'mlflow.db'}",
           "artifacts": (folder / "artifacts").as_uri()}


@contextmanager
def _mlflow_server(folder: Path) -> Iterator[dict[str, Any]]:
    """``mlflow server`` on SQLite at a free loopback port, stopped (whole group) afterwards."""
    port = _free_port()
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [str(anchors.executable("mlflow")), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
         "--default-artifact-root", (folder / "artifacts").as_uri()],
        cwd=folder, env=tool_env(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, folder / "server.log")
        yield {"uri": url}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise BenchError(f"mlflow server exited: {' '.join(tail)}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise BenchError(f"mlflow server not healthy after {SERVER_START_TIMEOUT:.0f} s")


def targets(ctx: Context) -> dict[str, Target]:
    ours = Driver(Path(sys.executable), "modelyard_ops")
    theirs = Driver(anchors.python(ctx.anchors_venv), "mlflow_ops")
    return {
        "modelyard": Target("modelyard", "modelyard", "modelyard", ours, _modelyard_home),
        "mlflow": Target("mlflow", "mlflow", "mlflow", theirs, _mlflow_sqlite),
        "mlflow-server": Target("mlflow-server", "mlflow (server)", "mlflow", theirs,
                                _mlflow_server),
    }


def _case(ctx: Context, scenario: str, target: Target,
          steps: Callable[[Path, dict[str, Any]], Steps], algo: str | None = None) -> Case:
    """A case whose session connects ``target`` in a fresh folder and builds its steps."""
    @contextmanager
    def session() -> Iterator[Steps]:
        folder = ctx.scratch(f"s{scenario}", target.key)
        with target.connect(folder) as conn:
            yield steps(folder, conn)
    return Case(scenario, target.tool, target.family, session, algo=algo)


def _tiny_file(ctx: Context) -> str:
    path = ctx.data / "tiny" / "model.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"a tiny model\n")
    return str(path)


def cases(ctx: Context) -> list[Case]:
    t, sizes = targets(ctx), ctx.sizes
    out: list[Case] = []

    def register_download(target: Target) -> Case:
        def steps(folder: Path, conn: dict[str, Any]) -> Steps:
            source = datagen.model_dir(ctx.data, sizes.model_dir)
            args = {**conn, "source": str(source), "out": str(folder / "out")}

            def empty(_run: int) -> None:  # every run starts from an empty registry
                empty_dir(folder)
            return {"register + download": target.driver.step(
                "register_download", args, folder.parent, empty, sizes.model_dir)}
        return _case(ctx, "5", target, steps, "blake3" if target.family == "modelyard" else None)

    def create_versions(target: Target) -> Case:
        return _case(ctx, "6", target, lambda folder, conn: {"create": target.driver.step(
            "create_versions", {**conn, "file": _tiny_file(ctx), "count": sizes.versions},
            folder)})

    def populated(scenario: str, target: Target, count: int, op: str,
                  extra: dict[str, Any]) -> Case:
        def steps(folder: Path, conn: dict[str, Any]) -> Steps:
            target.driver.run("populate", {**conn, "file": _tiny_file(ctx), "count": count},
                              folder)
            return {op: target.driver.step(op, {**conn, **extra}, folder)}
        return _case(ctx, scenario, target, steps)

    def writers(target: Target) -> Case:
        return _case(ctx, "9", target, lambda folder, conn: {"writers": target.driver.step(
            "writers", {**conn, "file": _tiny_file(ctx), "writers": sizes.writers,
                        "per_writer": sizes.writes_per_writer}, folder)})

    for key in ("modelyard", "mlflow"):
        out.append(register_download(t[key]))
    for key in ("modelyard", "mlflow", "mlflow-server"):
        out.append(create_versions(t[key]))
    for key in ("modelyard", "mlflow"):
        out.append(populated("7", t[key], sizes.resolve_versions, "resolve",
                             {"calls": sizes.resolve_calls}))
    for count in sizes.search_versions:
        for key in ("modelyard", "mlflow"):
            out.append(populated("8", t[key], count, "search", {"label": f"{count:,} versions"}))
    out.append(Case("8", "mlflow", "mlflow", None, label="search by metric",
                    unsupported="cannot be expressed: MLflow searches model versions by "
                                "name, run_id, source_path and tags only"))
    for key in ("modelyard", "mlflow", "mlflow-server"):
        out.append(writers(t[key]))
    return out
