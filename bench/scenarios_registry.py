"""Scenarios 5 to 9: the model registry, Modelyard against MLflow, embedded and served.

Each tool runs two ways: its Python API straight on a SQLite store (embedded) and,
where the issues ask for it, through its server on SQLite, its normal deployment for a
team: ``modelyard server --workers 2`` driven through ``modelyard.connect(url, token=)``,
and ``mlflow server`` (artifacts proxied, so its bytes go through the server too) driven
through ``MlflowClient``. A server column is one more ``Target`` whose session starts the
server and yields how to reach it; its rows also report the server's peak RSS.
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
SERVER_WORKERS = 2  # modelyard server processes: one per core of the benchmark machine


@dataclass(frozen=True)
class Target:
    """One column: a tool, its driver, how it connects (a session yielding its args) and
    how a run of scenario 5 starts from no stored content (``reset`` of the case folder)."""

    key: str  # folder-safe name
    tool: str
    family: str
    driver: Driver
    connect: Callable[[Path], AbstractContextManager[dict[str, Any]]]
    reset: Callable[[Path], object] = empty_dir  # embedded: a fresh registry


def _emptied(*parts: str) -> Callable[[Path], None]:
    """A server's reset: it keeps its database open, so only its content folder and the
    download target are emptied (the drivers name each run's model apart)."""
    def reset(folder: Path) -> None:
        for part in (*parts, "out"):
            empty_dir(folder / part)
    return reset


@contextmanager
def _modelyard_home(folder: Path) -> Iterator[dict[str, Any]]:
    yield {"home": str(folder / "home")}


@contextmanager
def _mlflow_sqlite(folder: Path) -> Iterator[dict[str, Any]]:
    yield {"uri": f"sqlite:///{folder / 'mlflow.db'}",
           "artifacts": (folder / "artifacts").as_uri()}


@contextmanager
def _mlflow_server(folder: Path) -> Iterator[dict[str, Any]]:
    """``mlflow server`` on SQLite, serving artifacts from ``folder/artifacts`` (``db``: its
    database, for the untimed bulk loads)."""
    port, db = _free_port(), f"sqlite:///{folder / 'server.db'}"
    with _serving("mlflow server", [
            str(anchors.executable("mlflow")), "server", "--host", "127.0.0.1",
            "--port", str(port), "--backend-store-uri", db,
            "--artifacts-destination", str(folder / "artifacts")],
            folder, f"http://127.0.0.1:{port}/health") as pid:
        yield {"uri": f"http://127.0.0.1:{port}", "db": db, "server_pid": pid}


@contextmanager
def _modelyard_server(folder: Path) -> Iterator[dict[str, Any]]:
    """``modelyard server --workers 2`` on a scratch registry (SQLite and a folder store
    under ``home``, which the untimed bulk loads open directly) with an admin token."""
    from modelyard.config import Settings
    from modelyard.services.access import init_admin
    from modelyard.storage.sql.database import Database

    home = folder / "home"
    settings = Settings.resolve(home=home)
    db = Database(settings.registry_uri)
    try:
        _, token = init_admin(db, "bench")
    finally:
        db.dispose()
    port = _free_port()
    with _serving("modelyard server", [
            str(Path(sys.executable).with_name("modelyard")), "server", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(SERVER_WORKERS),
            "--registry", settings.registry_uri, "--store", settings.store_uri],
            folder, f"http://127.0.0.1:{port}/healthz") as pid:
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "home": str(home),
               "server_pid": pid}


@contextmanager
def _serving(name: str, argv: list[str], folder: Path, health: str) -> Iterator[int]:
    """``argv`` in a session of its own, logging to ``folder/server.log``; yields its pid
    (its process group) once ``health`` answers 200, and stops the whole group afterwards."""
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(argv, cwd=folder, env=tool_env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_healthy(name, health, proc, folder / "server.log")
        yield proc.pid
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


def _wait_healthy(name: str, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise BenchError(f"{name} exited: {' '.join(tail)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise BenchError(f"{name} not healthy after {SERVER_START_TIMEOUT:.0f} s")


def targets(ctx: Context) -> dict[str, Target]:
    ours = Driver(Path(sys.executable), "modelyard_ops")
    theirs = Driver(anchors.python(ctx.anchors_venv), "mlflow_ops")
    return {
        "modelyard": Target("modelyard", "modelyard", "modelyard", ours, _modelyard_home),
        "mlflow": Target("mlflow", "mlflow", "mlflow", theirs, _mlflow_sqlite),
        "modelyard-server": Target("modelyard-server", "modelyard (server)", "modelyard",
                                   ours, _modelyard_server, _emptied("home/objects")),
        "mlflow-server": Target("mlflow-server", "mlflow (server)", "mlflow", theirs,
                                _mlflow_server, _emptied("artifacts")),
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

            def empty(_run: int) -> None:  # every run starts with no content stored
                target.reset(folder)
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

    served = ("modelyard", "modelyard-server", "mlflow", "mlflow-server")
    for key in served:
        out.append(register_download(t[key]))
    for key in served:
        out.append(create_versions(t[key]))
    for key in served:
        out.append(populated("7", t[key], sizes.resolve_versions, "resolve",
                             {"calls": sizes.resolve_calls}))
    for count in sizes.search_versions:
        for key in ("modelyard", "mlflow"):
            out.append(populated("8", t[key], count, "search", {"label": f"{count:,} versions"}))
    out.append(Case("8", "mlflow", "mlflow", None, label="search by metric",
                    unsupported="cannot be expressed: MLflow searches model versions by "
                                "name, run_id, source_path and tags only"))
    for key in served:
        out.append(writers(t[key]))
    return out
