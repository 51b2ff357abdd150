"""Server fixtures: the app in-process over a fresh registry (FastAPI's TestClient, an
``httpx.Client``), and the real server as a ``uvicorn`` subprocess that can be killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from modelyard.domain.principal import Role
from modelyard.server.app import Backend, create_app
from modelyard.services.access import Access, init_admin
from modelyard.services.base import Context
from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add_user(db: Database, store: ObjectStore, name: str, role: Role) -> str:
    """A new user's token, made by the registry's admin ``ana``."""
    admin = Registry(db, store, user="ana")
    _, token = Access(Context(db, store, admin.principal)).create_user(name, role)
    return token


@dataclass
class Served:
    """An app on a fresh SQLite registry and folder store; ``client`` sends the admin
    ``ana``'s token."""

    app: FastAPI
    client: TestClient
    token: str

    @property
    def backend(self) -> Backend:
        backend: Backend = self.app.state.backend
        return backend

    def token_for(self, name: str, role: Role) -> str:
        return add_user(self.backend.db, self.backend.store, name, role)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(registry_uri=None, store_uri=None)``: an app in-process (default: SQLite and
    a folder under tmp_path), running until the test ends."""
    with ExitStack() as running:

        def start(registry_uri: str | None = None, store_uri: str | None = None) -> Served:
            app = create_app(registry_uri or f"sqlite:///{tmp_path / 'registry.db'}",
                             store_uri or str(tmp_path / "objects"))
            client = running.enter_context(TestClient(app))
            _, token = init_admin(app.state.backend.db, "ana")
            client.headers.update(bearer(token))
            return Served(app, client, token)

        yield start


@pytest.fixture
def served(serve: Callable[..., Served]) -> Served:
    return serve()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


_KILLING = threading.Lock()


@dataclass
class LiveServer:
    """``uvicorn --factory modelyard.server.app:app_from_environment`` on a loopback port,
    with ``MODELYARD_REGISTRY_URI``/``MODELYARD_STORE_URI`` set; ``kill()`` is SIGKILL and
    ``start()`` brings it back on the same port, over the same registry and store."""

    registry_uri: str
    store_uri: str
    log: Path
    workers: int = 1
    port: int = field(default_factory=_free_port)
    token: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **options: Any) -> httpx.Client:
        """A client on the server with the admin's token."""
        return httpx.Client(base_url=self.url, headers=bearer(self.token), **options)

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "MODELYARD_REGISTRY_URI": self.registry_uri,
               "MODELYARD_STORE_URI": self.store_uri}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory",
                 "modelyard.server.app:app_from_environment", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", str(self.workers),
                 "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the server did not start:\n{self.log.read_text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, to the whole process group (a worker pool dies with its parent).

        Safe to call from several upload threads at once: the first one kills, the
        others find nothing left to kill."""
        with _KILLING:
            process, self.process = self.process, None
        if process is not None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """``start_server(registry_uri=None, store_uri=None, workers=1)``: a running server
    (default: SQLite and a folder under tmp_path) whose registry has the admin ``ana``
    (``server.token``); every server started is stopped at the end."""
    started: list[LiveServer] = []

    def start(registry_uri: str | None = None, store_uri: str | None = None,
              workers: int = 1) -> LiveServer:
        n = len(started)
        registry_uri = registry_uri or f"sqlite:///{tmp_path / f'live-{n}.db'}"
        db = Database(registry_uri)
        try:
            _, token = init_admin(db, "ana")
        finally:
            db.dispose()
        server = LiveServer(registry_uri, store_uri or str(tmp_path / f"live-{n}-objects"),
                            tmp_path / f"live-{n}.log", workers, token=token)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def live_server(start_server: Callable[..., LiveServer]) -> LiveServer:
    return start_server()
