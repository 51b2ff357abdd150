"""GCS and Azure for real, on loopback: a registry store and a data remote on each.

GCS runs on ``gcp-storage-emulator`` (PyPI, in the dev extra); Azure on Azurite (npm),
installed into ``tests/.emulators`` by ``.ci/run`` or, when missing, by the fixture (it
needs Node.js and npm; without them the Azure tests are skipped and say why). Both run in
memory on a free 127.0.0.1 port for this module.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import modelyard
from modelyard import data

EMULATORS = Path(__file__).resolve().parents[1] / ".emulators"
BUCKET = "modelyard-test"
AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")  # Azurite's published development key, not a secret


@dataclass(frozen=True)
class Cloud:
    scheme: str
    options: dict[str, Any]  # what a store needs: endpoint and credentials

    def url(self) -> str:
        return f"{self.scheme}://{BUCKET}/prefix-{uuid.uuid4().hex}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(argv: list[str], port: int, log: Path,
           cwd: Path | None = None) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{argv[0]} did not start:\n{log.read_text()}")
            time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()  # in memory, nothing to flush; neither exits promptly on TERM or INT
    proc.wait()


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    port = _free_port()
    proc = _serve([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                   "--port", str(port), "--in-memory", "--default-bucket", BUCKET], port,
                  tmp_path_factory.mktemp("gcs") / "server.log")
    try:
        with pytest.MonkeyPatch.context() as mp:
            # gcsfs >= 2026.10 first asks the bucket's type over gRPC, which the emulator
            # does not serve (60 s per attempt); the plain JSON API is what it emulates.
            mp.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
            mp.setenv("NO_GCE_CHECK", "true")  # no probe for a GCE metadata server
            yield Cloud("gs", {"endpoint_url": f"http://127.0.0.1:{port}", "token": "anon",
                               "project": "modelyard-test"})
    finally:
        _stop(proc)


def _azurite() -> Path:
    """Azurite's blob server, installed from the npm registry on first use."""
    binary = EMULATORS / "node_modules" / ".bin" / "azurite-blob"
    npm = shutil.which("npm")
    if not binary.exists() and npm is None:
        pytest.skip("Azurite needs Node.js and npm (apt-get install nodejs npm)")
    with open(EMULATORS / "package.json", "rb") as lock:  # one installer across xdist workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists() and npm is not None:
            subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=EMULATORS, check=True, timeout=900)
    return binary


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    binary = _azurite()
    port = _free_port()
    proc = _serve([str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port),
                   "--inMemoryPersistence", "--skipApiVersionCheck", "--silent"], port,
                  tmp_path_factory.mktemp("azurite") / "server.log", cwd=EMULATORS)
    try:
        from azure.storage.blob import BlobServiceClient

        connection = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                      f"AccountKey={AZURITE_KEY};"
                      f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
        BlobServiceClient.from_connection_string(connection).create_container(BUCKET)
        yield Cloud("az", {"connection_string": connection})
    finally:
        _stop(proc)


@pytest.fixture(params=["gcs", "azure"])
def cloud(request: pytest.FixtureRequest) -> Cloud:
    found: Cloud = request.getfixturevalue(request.param)
    return found


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_registry_store_round_trip(cloud: Cloud, model_dir: Path, tmp_path: Path) -> None:
    url = cloud.url()
    reg = modelyard.connect(f"sqlite:///{tmp_path / 'registry.db'}", store=url,
                            storage_options=cloud.options, home=tmp_path / "home")
    version = reg.register("fraud", model_dir)
    assert reg.register("fraud", model_dir).digest == version.digest  # content stored once
    out = reg.download("models:/fraud/1", tmp_path / "out")
    assert _tree(Path(out)) == _tree(model_dir)
    report = reg.verify()
    assert report.checked > 0 and (report.corrupt, report.missing) == ([], [])


def test_data_remote_push_pull_with_credentials_in_config_local(
        cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    monkeypatch.chdir(repo)
    data.init()
    (repo / "d").mkdir()
    (repo / "d" / "a.txt").write_text("alpha")
    (repo / "d" / "b.bin").write_bytes(os.urandom(5000))
    expected = _tree(repo / "d")
    data.add("d")
    data.remote_add("cloud", cloud.url(), default=True)
    for option, value in cloud.options.items():  # token / connection_string: this machine's
        data.remote_modify("cloud", option, value, local=True)
    assert "connection_string" not in (repo / ".modelyard" / "config").read_text()
    assert data.push().transferred == 3  # two files and the folder's manifest
    shutil.rmtree(repo / ".modelyard" / "cache")
    shutil.rmtree(repo / "d")
    fetched, _ = data.pull()
    assert fetched.transferred == 3 and _tree(repo / "d") == expected
