"""What a remote client sends to register a small file: the metadata call first, over the
file's digest; the upload (and the call again) only when the server lacks the content."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.client.remote import RemoteRegistry
from modelyard.domain.principal import Role
from modelyard.errors import NotFound, PermissionDenied
from modelyard.storage.content.hashing import hash_file
from server.conftest import Served, bearer

API = "/api/v1"


@pytest.fixture
def sent(served: Served) -> Iterator[list[str]]:
    """The paths of every request the served client sends."""
    paths: list[str] = []

    def record(request: httpx.Request) -> None:
        paths.append(request.url.path)

    served.client.event_hooks["request"].append(record)
    yield paths
    served.client.event_hooks["request"].remove(record)


@pytest.fixture
def remote(served: Served, tmp_path: Path) -> RemoteRegistry:
    registry = RemoteRegistry.over(served.client)
    registry.register("warm", _file(tmp_path, "warm.bin", b"asks the chunk policy once"))
    return registry


def _file(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def test_known_content_takes_one_request(remote: RemoteRegistry, sent: list[str],
                                         tmp_path: Path) -> None:
    path = _file(tmp_path, "model.bin", b"weights")
    first = remote.register("m", path)
    sent.clear()
    progress: list[int] = []
    second = remote.register("m", path, params={"lr": 0.1}, progress=progress.append)
    assert sent == [f"{API}/create-version"]
    assert (second.version, second.digest, second.artifact_name) == (2, first.digest,
                                                                     "model.bin")
    assert second.params == {"lr": 0.1}
    assert sum(progress) == len(b"weights")


def test_new_content_is_uploaded_then_registered(served: Served, remote: RemoteRegistry,
                                                 sent: list[str], tmp_path: Path) -> None:
    path = _file(tmp_path, "new.bin", b"never stored before")
    progress: list[int] = []
    version = remote.register("m", path, progress=progress.append)
    assert sent == [f"{API}/create-version", f"{API}/content/missing",
                    f"{API}/content/batch", f"{API}/create-version"]
    assert version.version == 1 and version.digest == hash_file(path)
    assert served.backend.store.verify(version.digest)
    assert sum(progress) == path.stat().st_size
    # the refused first try left nothing behind: one version, one registration event
    assert [v.version for v in remote.list_versions("m")] == [1]
    events = [e for e in remote.audit("m") if e.action == "version.register"]
    assert len(events) == 1
    out = remote.download("models:/m/1", tmp_path / "out")
    assert out.read_bytes() == b"never stored before"


def test_a_refusal_that_is_not_about_the_content_is_raised_before_any_upload(
        served: Served, remote: RemoteRegistry, sent: list[str], tmp_path: Path) -> None:
    viewer = RemoteRegistry.over(served.client)
    path = _file(tmp_path, "secret.bin", b"not for viewers")
    token = served.token_for("vic", Role.VIEWER)
    with pytest.raises(PermissionDenied):
        viewer.http.headers.update(bearer(token))
        try:
            viewer.register("m", path)
        finally:
            viewer.http.headers.update(bearer(served.token))
    assert f"{API}/content/batch" not in sent
    assert not served.backend.store.exists(hash_file(path))
    sent.clear()
    with pytest.raises(NotFound, match="nosuch"):  # refused by the server, before content
        remote.register("m", path, datasets=["datasets:/nosuch/1"])
    assert sent == [f"{API}/create-version"]
    assert not served.backend.store.exists(hash_file(path))


def test_datasets_and_run_artifacts_of_known_content_take_one_request(
        remote: RemoteRegistry, sent: list[str], tmp_path: Path) -> None:
    path = _file(tmp_path, "rows.csv", b"a,b\n1,2\n")
    remote.register_dataset("rows", path)
    sent.clear()
    again = remote.register_dataset("rows", path)
    assert sent == [f"{API}/create-dataset-version"]
    assert again.version == 2
    run = remote.create_run("e")
    remote.log_run_artifact(run.run_id, path)
    sent.clear()
    artifact = remote.log_run_artifact(run.run_id, path, artifact_path="copy.csv")
    assert sent == [f"{API}/check-running", f"{API}/record-run-artifact"]
    assert artifact.digest == hash_file(path)
