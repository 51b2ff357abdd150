"""Data commands against chunked remotes: what moves, resuming, gc and damaged chunks.

Every test runs on a folder remote and on S3 (moto), with small chunks so files of a few
hundred KiB are chunked.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from gitdata import commit, git

from modelyard import data
from modelyard.errors import IntegrityError
from modelyard.storage.content import chunked, chunking
from modelyard.storage.content.chunked import list_at
from modelyard.storage.content.chunking import ChunkPolicy
from modelyard.storage.content.hashing import Pieces, hash_bytes, hash_pieces
from modelyard.storage.content.objects import ObjectStore

SMALL = ChunkPolicy(threshold=64 * 1024, avg_size=16384, min_size=4096, max_size=65536)
SIZE = 512 * 1024
V1 = random.Random(11).randbytes(SIZE)
V2 = V1[:100_000] + random.Random(12).randbytes(3000) + V1[103_000:]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunking, "DEFAULT_POLICY", SMALL)


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.s3)])
def remote(request: pytest.FixtureRequest, repo: Path, tmp_path: Path) -> ObjectStore:
    """The default remote of ``repo``, as an ObjectStore to inspect."""
    if request.param == "s3":
        loc: Any = request.getfixturevalue("s3_location")
        url, options = loc.url, {"endpoint_url": loc.endpoint_url}
    else:
        url, options = str(tmp_path / "remote"), {}
    data.remote_add("origin", url, default=True, options=options)
    return ObjectStore(url, options)


def _version(repo: Path, content: bytes, message: str) -> None:
    (repo / "model.bin").write_bytes(content)
    data.add("model.bin")
    commit(repo, message)


def _two_versions_pushed(repo: Path) -> None:
    for content, message in ((V1, "v1"), (V2, "v2")):
        _version(repo, content, message)
        data.push()


def _wipe(repo: Path) -> None:
    shutil.rmtree(repo / ".modelyard" / "cache")
    (repo / ".modelyard" / "state.db").unlink()
    (repo / "model.bin").unlink(missing_ok=True)


def test_push_and_pull_of_a_new_version_move_only_its_new_chunks(
        repo: Path, remote: ObjectStore) -> None:
    _version(repo, V1, "v1")
    assert data.push().bytes_sent >= SIZE
    _version(repo, V2, "v2")
    pushed = data.push()
    assert pushed.transferred == 1 and 0 < pushed.bytes_sent < SIZE // 5

    _wipe(repo)
    git(repo, "checkout", "-q", "HEAD~1", "--", "model.bin.yard")
    first, _ = data.pull()
    assert first.bytes_sent == SIZE and (repo / "model.bin").read_bytes() == V1
    git(repo, "checkout", "-q", "HEAD", "--", "model.bin.yard")
    second, checked = data.pull(force=True)
    assert second.transferred == 1 and 0 < second.bytes_sent < SIZE // 5
    assert (repo / "model.bin").read_bytes() == V2 and checked.files_written == 1


def test_an_interrupted_push_resumes_without_resending_finished_chunks(
        repo: Path, remote: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _version(repo, V1, "v1")
    sent: list[list[str]] = [[]]

    def count(chunk: str) -> None:  # the 11th chunk upload of the first push fails
        if len(sent) == 1 and len(sent[0]) == 10:
            raise ConnectionError("link lost")
        sent[-1].append(chunk)

    if remote.is_local:  # a folder remote: chunks are written as they are cut
        real_write = chunked._write_all

        def failing_write(fd: int, pieces: Pieces) -> None:
            count(hash_pieces(pieces))
            real_write(fd, pieces)

        monkeypatch.setattr(chunked, "_write_all", failing_write)
    else:
        real_put = ObjectStore.put_bytes

        def failing_put(self: ObjectStore, payload: bytes, rehash: bool = False,
                        digest: str | None = None) -> str:
            if self.url == remote.url and digest not in (None, hash_bytes(V1)):
                count(hash_bytes(payload))
            return real_put(self, payload, rehash, digest)

        monkeypatch.setattr(ObjectStore, "put_bytes", failing_put)
    monkeypatch.setattr(chunked, "_UPLOAD_JOBS", 1)
    monkeypatch.setattr(chunked, "_HASH_WORKERS", 1)
    with pytest.raises(ConnectionError):
        data.push(jobs=1)
    assert list_at(remote, hash_bytes(V1)) is None  # no list without all of its chunks
    sent.append([])
    resumed = data.push(jobs=1)
    listed = list_at(remote, hash_bytes(V1))
    assert listed is not None
    assert set(sent[0]).isdisjoint(sent[1])
    assert set(sent[0]) | set(sent[1]) == set(listed.sizes())
    assert resumed.bytes_sent == sum(listed.sizes()[c] for c in sent[1]) < SIZE


def test_gc_of_a_chunked_remote_keeps_every_chunk_a_kept_file_uses(
        repo: Path, remote: ObjectStore) -> None:
    _two_versions_pushed(repo)
    old, new = list_at(remote, hash_bytes(V1)), list_at(remote, hash_bytes(V2))
    assert old is not None and new is not None
    report = data.gc(workspace=True, remote="origin", only_this_clone=True, grace=0)
    only_old = set(old.sizes()) - set(new.sizes())
    assert set(report.removed) == {hash_bytes(V1), *only_old} and only_old
    assert remote.exists_many(new.sizes()) == set(new.sizes())
    _wipe(repo)
    data.pull()
    assert (repo / "model.bin").read_bytes() == V2


def test_a_damaged_chunk_on_the_remote_fails_the_pull_and_leaves_nothing(
        repo: Path, remote: ObjectStore) -> None:
    _version(repo, V1, "v1")
    data.push()
    listed = list_at(remote, hash_bytes(V1))
    assert listed is not None
    chunk, n = listed.chunks[3]
    remote.delete(chunk)
    remote.put_bytes(b"\x00" * n, digest=chunk)  # same size, wrong bytes
    _wipe(repo)
    with pytest.raises(IntegrityError, match="chunk"):
        data.pull()
    assert not (repo / "model.bin").exists()
    cache = repo / ".modelyard" / "cache"
    assert [p for p in cache.rglob("*") if p.is_file() and "lists" not in p.parts] == []


def test_a_damaged_earlier_version_in_the_cache_is_not_reused(
        repo: Path, remote: ObjectStore) -> None:
    _two_versions_pushed(repo)
    _wipe(repo)
    git(repo, "checkout", "-q", "HEAD~1", "--", "model.bin.yard")
    data.pull()
    cached = repo / ".modelyard" / "cache" / hash_bytes(V1)[7:9] / hash_bytes(V1)[9:]
    cached.chmod(0o644)
    with open(cached, "r+b") as f:  # rot in a chunk v2 shares with v1
        f.seek(SIZE - 1000)
        f.write(b"\xff" * 100)
    git(repo, "checkout", "-q", "HEAD", "--", "model.bin.yard")
    fetched, _ = data.pull(force=True)
    assert (repo / "model.bin").read_bytes() == V2
    assert fetched.bytes_sent > 0
