"""The object store, against a real folder and a real (moto) S3 server."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest

from modelyard.errors import IntegrityError, InvalidInput, NotFound, StorageUnavailable
from modelyard.storage.content.hashing import CHUNK_SIZE, hash_bytes, hash_file, hash_files
from modelyard.storage.content.manifest import Manifest
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.index.state_cache import StateCache

MISSING = "blake3:" + "0" * 64


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(str(tmp_path / "store"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Nested files, an executable, an empty file and two files with the same content."""
    root = tmp_path / "tree"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(300_000))
    (root / "config.json").write_text('{"layers": 3}')
    (root / "sub" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "sub" / "run.sh", 0o755)
    (root / "sub" / "deep" / "empty").write_bytes(b"")
    (root / "sub" / "deep" / "copy.json").write_text('{"layers": 3}')
    return root


def snapshot(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Relative path → (content, executable) for every file below ``root``."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), bool(p.stat().st_mode & stat.S_IXUSR))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob(".modelyard-*")]


def corrupt_local(store: ObjectStore, digest: str) -> None:
    path = Path(store._path(digest))
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


# -- local folder ---------------------------------------------------------------------


def test_file_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(CHUNK_SIZE * 2 + 11))
    seen: list[int] = []
    digest = store.put_file(source, progress=seen.append)
    assert digest == hash_file(source)
    assert sum(seen) == source.stat().st_size
    assert store.exists(digest) and store.size(digest) == source.stat().st_size
    assert store.verify(digest)
    store.get_file(digest, tmp_path / "out" / "copy.bin")
    assert (tmp_path / "out" / "copy.bin").read_bytes() == source.read_bytes()
    assert list(store.iter_digests()) == [digest]
    assert leftovers(tmp_path) == []
    # Stored objects are read-only: nobody edits content-addressed data in place.
    assert not os.stat(store._path(digest)).st_mode & 0o222


def test_identical_content_is_stored_once_and_never_rewritten(
    store: ObjectStore, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    digest = store.put_file(a)
    before = os.stat(store._path(digest))
    time.sleep(0.01)
    assert store.put_file(b) == digest
    assert store.put_bytes(b"same bytes") == digest
    after = os.stat(store._path(digest))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list(store.iter_digests()) == [digest]


def test_bytes_round_trip_and_size_limit(store: ObjectStore) -> None:
    digest = store.put_bytes(b"manifest-ish")
    assert digest == hash_bytes(b"manifest-ish")
    assert store.get_bytes(digest) == b"manifest-ish"
    with pytest.raises(InvalidInput, match="larger than 4 bytes"):
        store.get_bytes(digest, max_size=4)
    with store.open_verified(digest) as stream:
        assert stream.read() == b"manifest-ish"


def test_directory_round_trip(store: ObjectStore, tree: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    stored = store.put_tree(tree, progress=seen.append, workers=4)
    assert stored.kind == "dir"
    assert stored.manifest is not None
    assert stored.file_count == 5
    assert stored.size == sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    assert sum(seen) == stored.size
    assert stored.digest == stored.manifest.digest
    assert store.get_manifest(stored.digest) == stored.manifest
    # 4 distinct contents (the two JSON files are identical) + the manifest.
    assert len(set(store.iter_digests())) == 5

    got: list[int] = []
    dest = tmp_path / "restored"
    assert store.materialize(stored.digest, "dir", dest, progress=got.append) == str(dest)
    assert snapshot(dest) == snapshot(tree)
    assert snapshot(dest)["sub/run.sh"][1] is True
    assert sum(got) == stored.size
    assert leftovers(tmp_path) == []


def test_storing_a_tree_again_writes_nothing(store: ObjectStore, tree: Path) -> None:
    first = store.put_tree(tree)
    mtimes = {d: os.stat(store._path(d)).st_mtime_ns for d in store.iter_digests()}
    assert store.put_tree(tree) == first
    assert {d: os.stat(store._path(d)).st_mtime_ns for d in store.iter_digests()} == mtimes


def test_single_file_tree_materializes_under_its_name(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"pickle")
    stored = store.put_tree(source)
    assert (stored.kind, stored.size, stored.file_count, stored.manifest) == ("file", 6, 1, None)
    out = store.materialize(stored.digest, "file", tmp_path / "dl", filename="model.pkl")
    assert Path(out).read_bytes() == b"pickle"
    with pytest.raises(InvalidInput, match="needs a filename"):
        store.materialize(stored.digest, "file", tmp_path / "dl")
    with pytest.raises(InvalidInput, match="unknown object kind"):
        store.materialize(stored.digest, "blob", tmp_path / "dl")  # type: ignore[arg-type]


def test_materialize_into_an_existing_folder_keeps_other_files(
    store: ObjectStore, tree: Path, tmp_path: Path
) -> None:
    stored = store.put_tree(tree)
    dest = tmp_path / "dest"
    (dest / "sub").mkdir(parents=True)
    (dest / "mine.txt").write_text("keep me")
    (dest / "config.json").write_text("stale")
    store.materialize(stored.digest, "dir", dest)
    assert (dest / "mine.txt").read_text() == "keep me"
    assert (dest / "config.json").read_text() == '{"layers": 3}'
    assert leftovers(dest) == []


def test_corrupted_object_fails_reads_and_leaves_nothing(
    store: ObjectStore, tree: Path, tmp_path: Path
) -> None:
    stored = store.put_tree(tree)
    assert stored.manifest is not None
    weights = stored.manifest.by_path["weights.bin"].digest
    corrupt_local(store, weights)

    assert store.verify(weights) is False
    dest = tmp_path / "out" / "weights.bin"
    with pytest.raises(IntegrityError, match=f"object {weights} is corrupted"):
        store.get_file(weights, dest)
    assert not dest.exists()
    assert leftovers(tmp_path / "out") == []

    with pytest.raises(IntegrityError, match=weights):
        store.materialize(stored.digest, "dir", tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "mine.txt").write_text("untouched")
    with pytest.raises(IntegrityError):
        store.materialize(stored.digest, "dir", existing)
    assert sorted(os.listdir(existing)) == ["mine.txt"]

    with pytest.raises(IntegrityError), store.open_verified(weights) as stream:
        stream.read()


def test_corrupted_manifest_is_detected(store: ObjectStore, tree: Path, tmp_path: Path) -> None:
    stored = store.put_tree(tree)
    corrupt_local(store, stored.digest)
    with pytest.raises(IntegrityError):
        store.materialize(stored.digest, "dir", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_interrupted_download_leaves_no_partial_file(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "big"
    source.write_bytes(os.urandom(CHUNK_SIZE * 3))
    digest = store.put_file(source)

    def interrupt(_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.get_file(digest, tmp_path / "dl" / "big", progress=interrupt)
    assert os.listdir(tmp_path / "dl") == []


@pytest.mark.parametrize("bad_path", ["../escaped", "/etc/passwd", "a//b", "a\\b"])
def test_unsafe_manifest_is_refused_by_materialize(
    store: ObjectStore, tmp_path: Path, bad_path: str
) -> None:
    content = store.put_bytes(b"evil")
    forged = json.dumps(
        {"format": 1, "entries": [{"path": bad_path, "digest": content, "size": 4, "mode": 420}]}
    ).encode()
    digest = store.put_bytes(forged)
    dest = tmp_path / "dest"
    with pytest.raises(InvalidInput, match="unsafe path"):
        store.materialize(digest, "dir", dest)
    assert not (tmp_path / "escaped").exists()
    assert not dest.exists()


def test_materialize_refuses_to_write_through_a_symlink_out_of_dest(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "link").mkdir(parents=True)
    (source / "link" / "payload").write_text("x")
    stored = store.put_tree(source)
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "link").symlink_to(outside)
    with pytest.raises(InvalidInput, match="outside"):
        store.materialize(stored.digest, "dir", dest)
    assert os.listdir(outside) == []
    assert sorted(os.listdir(dest)) == ["link"]


def test_materialize_refuses_a_file_where_a_folder_is_needed(
    store: ObjectStore, tree: Path, tmp_path: Path
) -> None:
    stored = store.put_tree(tree)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").write_text("I am a file")
    with pytest.raises(InvalidInput, match="not a folder"):
        store.materialize(stored.digest, "dir", dest)
    assert sorted(os.listdir(dest)) == ["sub"]


def test_symlink_escaping_the_tree_is_refused_before_storing(
    store: ObjectStore, tree: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text("s3cr3t")
    (tree / "sub" / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidInput, match="points outside"):
        store.put_tree(tree)
    assert list(store.iter_digests()) == []


def test_symlink_inside_the_tree_is_stored_as_its_content(
    store: ObjectStore, tree: Path, tmp_path: Path
) -> None:
    (tree / "alias.json").symlink_to("config.json")
    stored = store.put_tree(tree)
    assert stored.manifest is not None
    entry = stored.manifest.by_path["alias.json"]
    assert entry.digest == stored.manifest.by_path["config.json"].digest
    store.materialize(stored.digest, "dir", tmp_path / "out")
    restored = tmp_path / "out" / "alias.json"
    assert not restored.is_symlink() and restored.read_text() == '{"layers": 3}'


def test_a_wrong_digest_is_caught_while_copying(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"actual content")
    claimed = hash_bytes(b"something else")
    with pytest.raises(IntegrityError, match="does not match digest"):
        store.put_file(source, digest=claimed)
    assert not store.exists(claimed)
    assert leftovers(tmp_path) == []


def test_missing_objects_and_bad_input(store: ObjectStore, tmp_path: Path) -> None:
    for call in (
        lambda: store.get_file(MISSING, tmp_path / "x"),
        lambda: store.size(MISSING),
        lambda: store.verify(MISSING),
        lambda: store.get_bytes(MISSING),
        lambda: store.open_verified(MISSING),
        lambda: store.materialize(MISSING, "dir", tmp_path / "d"),
    ):
        with pytest.raises(NotFound, match=MISSING):
            call()
    assert os.listdir(tmp_path) == []  # nothing created, not even the store folder
    assert store.delete(MISSING) is False
    assert not store.exists(MISSING)
    with pytest.raises(InvalidInput, match="not a valid digest"):
        store.exists("blake3:nope")
    with pytest.raises(InvalidInput, match="path not found"):
        store.put_tree(tmp_path / "nope")
    with pytest.raises(InvalidInput, match="cannot hash"):
        store.put_file(tmp_path / "nope")


def test_exists_many_and_delete(store: ObjectStore) -> None:
    stored = [store.put_bytes(f"object {i}".encode()) for i in range(50)]
    assert store.exists_many([*stored, MISSING]) == set(stored)
    assert store.delete(stored[0]) is True
    assert store.exists_many(stored) == set(stored[1:])
    assert set(store.iter_digests()) == set(stored[1:])


def test_file_url_and_stray_files_are_tolerated(tmp_path: Path) -> None:
    store = ObjectStore((tmp_path / "s").as_uri())
    digest = store.put_bytes(b"x")
    (tmp_path / "s" / "README").write_text("not an object")
    (tmp_path / "s" / digest[7:9] / ".modelyard-dead.tmp").write_text("crashed writer")
    assert list(store.iter_digests()) == [digest]
    assert list(ObjectStore(str(tmp_path / "empty")).iter_digests()) == []


def test_state_cache_skips_rehashing_unchanged_trees(
    store: ObjectStore, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []

    def counting(paths: Sequence[str], workers: int | None = None, **kw: Any) -> list[str]:
        hashed.extend(map(os.fspath, paths))
        return hash_files(paths, workers, **kw)

    monkeypatch.setattr("modelyard.storage.index.state_cache.hash_files", counting)
    with StateCache(tmp_path / "state.db") as cache:
        first = store.put_tree(tree, cache=cache)
        assert len(hashed) == 5
        hashed.clear()
        assert store.put_tree(tree, cache=cache) == first
        assert hashed == []
        (tree / "config.json").write_text('{"layers": 4}')
        second = store.put_tree(tree, cache=cache)
        assert hashed == [str(tree / "config.json")]
    assert second.digest != first.digest


# -- any other fsspec filesystem (memory://): temporary name, then rename -------------


def test_generic_fsspec_store_round_trip_and_atomic_writes(tree: Path, tmp_path: Path) -> None:
    store = ObjectStore(f"memory://modelyard-{uuid.uuid4().hex}/objects")
    big = tmp_path / "big"
    big.write_bytes(os.urandom(CHUNK_SIZE + 100))
    digest = store.put_file(big)
    assert store.verify(digest) and store.size(digest) == big.stat().st_size
    stored = store.put_tree(tree)
    store.materialize(stored.digest, "dir", tmp_path / "restored")
    assert snapshot(tmp_path / "restored") == snapshot(tree)

    before = set(store.fs.find(store.root))
    for source, claimed in ((big, hash_bytes(b"a")), (tree / "config.json", hash_bytes(b"b"))):
        with pytest.raises(IntegrityError, match="does not match digest"):
            store.put_file(source, digest=claimed)
        assert not store.exists(claimed)
    assert set(store.fs.find(store.root)) == before  # no object, no temporary file
    assert len(set(store.iter_digests())) == len(before)


# -- S3 (moto server) -----------------------------------------------------------------


@pytest.fixture
def s3_store(s3_location: Any) -> ObjectStore:
    return ObjectStore(s3_location.url, s3_location.storage_options)


@pytest.fixture
def s3_client(moto_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=moto_endpoint)


def s3_key(store: ObjectStore, digest: str) -> tuple[str, str]:
    bucket, _, key = store._path(digest).partition("/")
    return bucket, key


@pytest.mark.s3
def test_s3_file_round_trip_small_and_streamed(s3_store: ObjectStore, tmp_path: Path) -> None:
    for size in (10, CHUNK_SIZE + 1024 * 1024):
        source = tmp_path / f"f{size}"
        source.write_bytes(os.urandom(size))
        seen: list[int] = []
        digest = s3_store.put_file(source, progress=seen.append)
        assert digest == hash_file(source)
        assert sum(seen) == size
        assert s3_store.exists(digest) and s3_store.size(digest) == size
        s3_store.get_file(digest, tmp_path / "out" / source.name)
        assert (tmp_path / "out" / source.name).read_bytes() == source.read_bytes()
        assert s3_store.verify(digest)
    assert leftovers(tmp_path) == []


@pytest.mark.s3
def test_s3_directory_round_trip(s3_store: ObjectStore, tree: Path, tmp_path: Path) -> None:
    stored = s3_store.put_tree(tree)
    assert set(s3_store.iter_digests()) == {stored.digest} | {
        e.digest for e in stored.manifest or Manifest([])
    }
    s3_store.materialize(stored.digest, "dir", tmp_path / "restored")
    assert snapshot(tmp_path / "restored") == snapshot(tree)
    assert s3_store.put_tree(tree) == stored


@pytest.mark.s3
def test_s3_exists_many_with_heads_and_prefix_listing(
    s3_store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 20 objects sharing one 2-hex prefix make exists_many list that prefix.
    shared: list[str] = []
    i = 0
    while len(shared) < 20:
        data = f"payload {i}".encode()
        i += 1
        if hash_bytes(data)[7:9] == "00":
            shared.append(s3_store.put_bytes(data))
    others = [s3_store.put_bytes(f"other {j}".encode()) for j in range(3)]
    absent = ["blake3:00" + f"{j:062x}" for j in range(5)] + [MISSING[:-1] + "1"]
    listed: list[str] = []
    real_ls = s3_store.fs.ls

    def spy_ls(path: str, **kwargs: Any) -> Any:
        listed.append(path)
        return real_ls(path, **kwargs)

    monkeypatch.setattr(s3_store.fs, "ls", spy_ls)
    assert s3_store.exists_many(shared + others + absent) == set(shared + others)
    assert listed == [f"{s3_store.root}/00"]
    assert s3_store.delete(others[0]) is True
    assert s3_store.delete(others[0]) is False
    assert s3_store.exists_many(others) == set(others[1:])


@pytest.mark.s3
def test_s3_corrupted_object_raises_integrity_error(
    s3_store: ObjectStore, s3_client: Any, tree: Path, tmp_path: Path
) -> None:
    stored = s3_store.put_tree(tree)
    assert stored.manifest is not None
    weights = stored.manifest.by_path["weights.bin"].digest
    bucket, key = s3_key(s3_store, weights)
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"tampered")
    assert s3_store.verify(weights) is False
    with pytest.raises(IntegrityError, match=weights):
        s3_store.get_file(weights, tmp_path / "w.bin")
    assert not (tmp_path / "w.bin").exists()
    with pytest.raises(IntegrityError, match=weights):
        s3_store.materialize(stored.digest, "dir", tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


@pytest.mark.s3
def test_s3_object_emptied_behind_our_back_is_corrupt(
    s3_store: ObjectStore, s3_client: Any, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "small.txt").write_text("small")
    stored = s3_store.put_tree(tmp_path / "src")
    assert stored.manifest is not None
    bucket, key = s3_key(s3_store, stored.manifest.by_path["small.txt"].digest)
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"")
    with pytest.raises(IntegrityError, match="is corrupted"):
        s3_store.materialize(stored.digest, "dir", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.s3
def test_s3_streamed_upload_with_wrong_digest_leaves_nothing(
    s3_store: ObjectStore, s3_client: Any, tmp_path: Path
) -> None:
    source = tmp_path / "big"
    source.write_bytes(os.urandom(CHUNK_SIZE + 4096))
    claimed = hash_bytes(b"not this")
    with pytest.raises(IntegrityError, match="does not match digest"):
        s3_store.put_file(source, digest=claimed)
    assert not s3_store.exists(claimed)
    bucket, key = s3_key(s3_store, claimed)
    own_prefix = key.split("/", 1)[0] + "/"  # the bucket is shared by parallel tests
    uploads = s3_client.list_multipart_uploads(Bucket=bucket, Prefix=own_prefix)
    assert uploads.get("Uploads", []) == []


@pytest.mark.s3
def test_s3_endpoint_from_the_environment(s3_location: Any, tmp_path: Path) -> None:
    """No storage options: botocore's AWS_ENDPOINT_URL_S3 (set by the fixture) is honoured."""
    assert os.environ["AWS_ENDPOINT_URL_S3"] == s3_location.endpoint_url
    store = ObjectStore(s3_location.url)
    digest = store.put_bytes(b"via env")
    assert store.get_bytes(digest) == b"via env"


@pytest.mark.s3
def test_s3_unreachable_endpoint_is_storage_unavailable(moto_endpoint: str, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    store = ObjectStore(
        "s3://modelyard-test/nowhere",
        {
            "endpoint_url": f"http://127.0.0.1:{closed_port}",
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
        },
    )
    source = tmp_path / "f"
    source.write_bytes(b"x")
    started = time.monotonic()
    for call in (
        lambda: store.exists(MISSING),
        lambda: store.put_file(source),
        lambda: store.get_file(MISSING, tmp_path / "out"),
        lambda: list(store.iter_digests()),
    ):
        with pytest.raises(StorageUnavailable, match="is unavailable"):
            call()
    assert time.monotonic() - started < 20
    assert not (tmp_path / "out").exists()
