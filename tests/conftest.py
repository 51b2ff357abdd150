"""Shared fixtures: real SQLite, real PostgreSQL, a real moto S3 server."""

import os

# --- registry fixtures (SQLite and PostgreSQL) ----------------------------------------
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# xdist workers inherit COLUMNS=80; the CLI sizes piped output as a user's pipe gets it.
os.environ.pop("COLUMNS", None)

import pg
from mlflow_api import environment as mlflow_environment
from modelyard.services.registry import Registry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.sql.database import Database

MLFLOW_TESTS = Path(__file__).parent / "mlflow_api"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start building the MLflow client's environment (minutes from PyPI on a new machine)
    while the other tests run, when this session will run the tests that need it."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller has started it
    for arg in session.config.args:
        path = (session.config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == MLFLOW_TESTS or path in MLFLOW_TESTS.parents or MLFLOW_TESTS in path.parents:
            mlflow_environment.build_in_background()
            return


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[pg.PgDatabases]:
    if not pg.available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 is not reachable")
    yield from pg.databases()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated metadata database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    dbs: pg.PgDatabases = request.getfixturevalue("pg_databases")
    url = dbs.fresh()
    yield url
    dbs.release(url)


@pytest.fixture
def reg(registry_url: str, tmp_path: Path) -> Iterator[Registry]:
    registry = Registry(Database(registry_url), ObjectStore(str(tmp_path / "objects")),
                        user="alice")
    yield registry
    registry.close()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A small model directory: weights, config, a nested file."""
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (root / "config.json").write_text('{"layers": 3}')
    (root / "sub" / "vocab.txt").write_text("a\nb\nc\n")
    return root


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded registry for CLI tests: MODELYARD_HOME under tmp_path, user alice."""
    home = tmp_path / "home"
    monkeypatch.setenv("MODELYARD_HOME", str(home))
    monkeypatch.setenv("MODELYARD_USER", "alice")
    monkeypatch.delenv("MODELYARD_REGISTRY_URI", raising=False)
    monkeypatch.delenv("MODELYARD_STORE_URI", raising=False)
    return home


# --- S3 fixtures (a real moto server process) ---------------------------------------------
# Session-wide: one `moto.server` subprocess on a free loopback port, fake credentials in
# the environment (AWS_ENDPOINT_URL_S3 too, so plain `ObjectStore("s3://…")` reaches it
# through botocore's usual configuration), and one bucket. Each test gets its own prefix.

from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

S3_BUCKET = "modelyard-test"


@dataclass(frozen=True)
class S3Location:
    endpoint_url: str
    bucket: str
    url: str
    """``s3://bucket/prefix-<uuid>``, unique per test."""
    storage_options: dict[str, Any]


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import socket
    import subprocess
    import time
    import urllib.request

    import boto3

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not start:\n{log_path.read_text()}")
                time.sleep(0.05)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("AWS_ACCESS_KEY_ID", "testing")
            mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            mp.setenv("AWS_SESSION_TOKEN", "testing")
            mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
            mp.setenv("AWS_ENDPOINT_URL_S3", endpoint)
            mp.delenv("AWS_PROFILE", raising=False)
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=S3_BUCKET)
            yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_location(moto_endpoint: str) -> S3Location:
    import uuid

    return S3Location(
        endpoint_url=moto_endpoint,
        bucket=S3_BUCKET,
        url=f"s3://{S3_BUCKET}/prefix-{uuid.uuid4().hex}",
        storage_options={"endpoint_url": moto_endpoint},
    )


# --- end of S3 fixtures -------------------------------------------------------------------
