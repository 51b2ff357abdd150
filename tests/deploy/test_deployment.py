"""The server as a team runs it: ``uvicorn`` with 2 workers on PostgreSQL and S3 (the moto
server), used only through ``modelyard.connect(url, token=...)``: concurrent writers from
separate processes, a three-person approval flow, and a 1 GiB round trip in bounded memory.

(An upload cut by a SIGKILL of the server and resumed is tests/server/
test_content_protocol.py's ``test_an_upload_cut_by_a_server_kill_resumes…``, on S3 too.)
"""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from threading import Barrier
from typing import Any

import pytest

import modelyard
from modelyard.domain.principal import Role
from modelyard.errors import PermissionDenied
from modelyard.storage.content.hashing import hash_file
from server.conftest import LiveServer

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

WRITERS = 16
MiB = 1024 * 1024
PEAK_RSS = 250 * MiB


@pytest.fixture
def deployed(deploy: Callable[..., LiveServer], s3_location: Any) -> LiveServer:
    """2 workers on a fresh PostgreSQL database and an S3 prefix of their own; the server
    reaches moto through ``AWS_ENDPOINT_URL_S3``, which the moto fixture exports."""
    return deploy(store_uri=s3_location.url, workers=2)


def _register(args: tuple[str, str, str, int, Barrier]) -> tuple[int, str]:
    """One writer process: connect, wait for the others, register its own model."""
    url, token, model, index, start = args
    reg = modelyard.connect(url, token=token)
    try:
        start.wait(timeout=120)
        return reg.register("shared", model, params={"writer": index}).version, ""
    except Exception as exc:  # reported back, asserted below
        return -1, f"{type(exc).__name__}: {exc}"
    finally:
        reg.close()


def test_sixteen_client_processes_get_versions_1_to_16(deployed: LiveServer, tmp_path: Path
                                                        ) -> None:
    admin = modelyard.connect(deployed.url, token=deployed.token)
    _, token = admin.create_user("carl", Role.CONTRIBUTOR)
    models = [tmp_path / f"model-{i}" for i in range(WRITERS)]
    for index, model in enumerate(models):
        model.mkdir()
        (model / "weights.bin").write_bytes(random.Random(index).randbytes(4096))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(WRITERS) as pool:
        start = manager.Barrier(WRITERS)
        results = pool.map(_register, [(deployed.url, token, str(model), i, start)
                                       for i, model in enumerate(models)])
    assert [error for _, error in results if error] == []
    assert sorted(number for number, _ in results) == list(range(1, WRITERS + 1))
    versions = admin.list_versions("shared", max_results=100)
    assert {v.version: v.params["writer"] for v in versions} == {
        number: index for index, (number, _) in enumerate(results)}
    assert {v.created_by for v in versions} == {"carl"}
    assert admin.verify_audit().ok
    admin.close()


def test_three_people_with_tokens_take_a_version_to_production(
        deployed: LiveServer, tmp_path: Path) -> None:
    ana = modelyard.connect(deployed.url, token=deployed.token)
    _, carl_token = ana.create_user("carl", Role.CONTRIBUTOR)
    _, rita_token = ana.create_user("rita", Role.REVIEWER)
    carl = modelyard.connect(deployed.url, token=carl_token)
    rita = modelyard.connect(deployed.url, token=rita_token)
    ana.create_model("fraud")
    ana.set_policy("fraud", approvals=1, reviewers=["rita"])
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"trained" * 1000)

    assert carl.register("fraud", model).version == 1
    carl.transition("fraud", 1, "staging", comment="ready")
    request = carl.request_promotion("fraud", 1, comment="please")
    with pytest.raises(PermissionDenied):
        carl.approve(request.id)
    assert rita.approve(request.id, comment="looks good").status == "applied"

    for reg in (ana, carl, rita):
        production = reg.get_version("models:/fraud/production")
        assert (production.version, production.stage) == (1, "production")
    assert [(e.action, e.actor) for e in ana.audit("fraud", max_results=100)] == [
        ("model.create", "ana"), ("policy.set", "ana"), ("version.register", "carl"),
        ("version.transition", "carl"), ("request.create", "carl"),
        ("request.approve", "rita"), ("version.transition", "rita"),
        ("request.applied", "rita")]
    denied = [e.after for e in ana.audit(max_results=1000) if e.action == "access.denied"]
    assert [(d["user"], d["operation"]) for d in denied] == [("carl", "approve")]
    assert ana.verify_audit().ok
    for reg in (ana, carl, rita):
        reg.close()


def _random_file(path: Path, size: int) -> None:
    """``size`` random bytes, written in 1 MiB blocks (no chunk repeats, so nothing dedups)."""
    rng = random.Random(7)
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(rng.randbytes(MiB))


def _family(pid: int) -> Iterator[int]:
    """``pid`` and every process under it (uvicorn's supervisor, its workers and helpers)."""
    yield pid
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            yield from _family(int(child))


def _peak_rss(pid: int) -> int:
    """The most resident memory ``pid`` ever had (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.mark.slow
def test_a_gigabyte_goes_up_and_down_in_bounded_server_memory(
        deployed: LiveServer, tmp_path: Path) -> None:
    source, out = tmp_path / "big.bin", tmp_path / "out"
    try:
        _random_file(source, 1024 * MiB)
        with modelyard.connect(deployed.url, token=deployed.token) as reg:
            version = reg.register("big", source)
            assert version.size == 1024 * MiB
            downloaded = reg.download("big", out, version=1)
        assert hash_file(downloaded) == hash_file(source) == version.digest
        assert deployed.process is not None
        peaks = {pid: _peak_rss(pid) for pid in _family(deployed.process.pid)}
        assert len(peaks) >= 3  # the supervisor and its two workers
        assert max(peaks.values()) < PEAK_RSS, {p: n // MiB for p, n in peaks.items()}
    finally:
        source.unlink(missing_ok=True)
        for path in out.rglob("*"):
            path.unlink()
