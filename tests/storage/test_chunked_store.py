"""Chunk-level dedup in the object store: boundaries, reassembly, dedup, verified reads."""

from __future__ import annotations

import io
import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.errors import IntegrityError
from modelyard.storage.content import chunk_lists, chunked, chunking, durability
from modelyard.storage.content.chunked import chunks_in_use, list_at
from modelyard.storage.content.chunking import ChunkPolicy, cut_stream
from modelyard.storage.content.hashing import hash_bytes
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.content.usage import added_bytes, store_stats

SMALL = ChunkPolicy(threshold=64 * 1024, avg_size=4096, min_size=1024, max_size=16384)
STORE = ChunkPolicy(threshold=64 * 1024, avg_size=8192, min_size=2048, max_size=32768)
"""Stores get ~30 chunks per file: enough to test, few enough for S3 round trips."""
_BASE = random.Random(7).randbytes(256 * 1024)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunking, "DEFAULT_POLICY", STORE)


def _cuts(data: bytes) -> list[chunking.Cut]:
    return list(cut_stream(io.BytesIO(data), SMALL))  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, len(_BASE) - 1), st.integers(0, 3), st.binary(max_size=3000),
       st.integers(0, 3000))
def test_edits_keep_most_boundaries_and_reassembly_is_exact(
        at: int, how: int, inserted: bytes, span: int) -> None:
    if how == 0:
        edited = _BASE[:at] + inserted + _BASE[at:]
    elif how == 1:
        edited = _BASE[:at] + _BASE[at + span:]
    else:
        edited = _BASE[:at] + inserted + _BASE[at + len(inserted):]
    before = {c.digest for c in _cuts(_BASE)}
    after = _cuts(edited)
    assert b"".join(edited[c.offset:c.offset + c.size] for c in after) == edited
    assert all(c.digest == hash_bytes(edited[c.offset:c.offset + c.size]) for c in after)
    shared = sum(c.size for c in after if c.digest in before)
    assert shared >= len(edited) - len(inserted) - span - 4 * SMALL.max_size


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> ObjectStore:
    if kind == "s3":
        loc: Any = request.getfixturevalue("s3_location")
        return ObjectStore(loc.url, loc.storage_options)
    return ObjectStore(str(tmp_path / "store"))


@pytest.fixture(params=["folder", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return _store(request.param, tmp_path, request)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_large_file_is_stored_as_chunks_under_its_whole_digest(store: ObjectStore,
                                                                tmp_path: Path) -> None:
    data = _BASE
    digest = store.put_file(_write(tmp_path / "a", data))
    assert digest == hash_bytes(data)
    listed = list_at(store, digest)
    assert listed is not None and listed.size == len(data) and len(listed.chunks) > 10
    assert store.size(digest) == len(data) and store.exists(digest)
    assert store.verify(digest)
    assert store.intact_many({digest: len(data)}) == {digest}
    store.get_file(digest, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == data
    with store.open_verified(digest) as stream:
        assert stream.read() == data


def test_a_new_version_stores_and_sends_only_changed_chunks(store: ObjectStore,
                                                             tmp_path: Path) -> None:
    v1 = store.put_file(_write(tmp_path / "a", _BASE))
    first = store_stats(store).stored_bytes
    edited = bytearray(_BASE)
    edited[100_000:102_000] = os.urandom(2000)
    sent = store.chunk_bytes_sent.total
    v2 = store.put_file(_write(tmp_path / "b", bytes(edited)))
    grew = store_stats(store).stored_bytes - first
    assert grew < len(_BASE) * 0.2
    assert store.chunk_bytes_sent.total - sent < len(_BASE) * 0.2
    assert 0 < added_bytes(store, (v2, "file"), [(v1, "file")]) <= grew
    stats = store_stats(store)
    assert stats.logical_bytes == 2 * len(_BASE) and stats.ratio > 1.6
    assert stats.chunked_files == 2


def test_a_small_file_stays_one_object(store: ObjectStore, tmp_path: Path) -> None:
    digest = store.put_file(_write(tmp_path / "s", _BASE[:1000]))
    assert list_at(store, digest) is None
    assert list(store.iter_digests()) == [digest]


def test_a_file_that_looks_like_a_chunk_list_stays_ordinary(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "store"))
    big = store.put_file(_write(tmp_path / "a", _BASE))
    document = (tmp_path / "store" / big[7:9] / big[9:]).read_bytes()
    copy = store.put_file(_write(tmp_path / "doc", document))
    assert list_at(store, copy) is None
    store.get_file(copy, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == document


def test_one_corrupt_chunk_is_caught_and_leaves_nothing(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "store"))
    digest = store.put_file(_write(tmp_path / "a", _BASE))
    listed = list_at(store, digest)
    assert listed is not None
    chunk = store.local_path(listed.chunks[5][0])
    os.chmod(chunk, 0o644)
    with open(chunk, "r+b") as f:
        f.write(b"\x00rot")
    with pytest.raises(IntegrityError, match="chunk"):
        store.get_file(digest, tmp_path / "out" / "a")
    assert not (tmp_path / "out" / "a").exists()
    assert list((tmp_path / "out").iterdir()) == []
    assert not store.verify(digest)
    with pytest.raises(IntegrityError):
        store.materialize(digest, "file", tmp_path / "co", filename="a")
    assert not (tmp_path / "co" / "a").exists()


def test_a_missing_chunk_is_damage_and_storing_again_repairs_it(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "store"))
    source = _write(tmp_path / "a", _BASE)
    digest = store.put_file(source)
    listed = list_at(store, digest)
    assert listed is not None
    store.delete(listed.chunks[0][0])
    assert not store.verify(digest)
    assert store.intact_many({digest: len(_BASE)}) == set()
    store.put_file(source)
    assert store.verify(digest)


def test_chunks_in_use_names_every_chunk_of_a_kept_file(store: ObjectStore,
                                                        tmp_path: Path) -> None:
    digest = store.put_file(_write(tmp_path / "a", _BASE))
    listed = list_at(store, digest)
    assert listed is not None
    assert chunks_in_use(store, {digest}) == {c for c, _ in listed.chunks}
    assert chunks_in_use(store, set()) == set()


def test_a_document_naming_another_digest_is_not_a_chunk_list() -> None:
    listed = chunk_lists.ChunkList(hash_bytes(b"x" * 10), 10, ((hash_bytes(b"x" * 10), 10),))
    data = listed.to_bytes()
    assert chunk_lists.parse(data, listed.digest) == listed
    assert chunk_lists.parse(data, hash_bytes(data)) is None
    assert chunk_lists.parse(b"junk", listed.digest) is None


def test_progress_moves_chunk_by_chunk_and_adds_up_to_the_file(store: ObjectStore,
                                                               tmp_path: Path) -> None:
    calls: list[int] = []
    store.put_file(_write(tmp_path / "a", _BASE), progress=calls.append)
    assert len(calls) > 10 and sum(calls) == len(_BASE)
    edited = _BASE[:5000] + b"new" + _BASE[5003:]
    calls.clear()
    store.put_tree(_write(tmp_path / "b", edited), progress=calls.append)
    assert sum(calls) == len(edited)


def test_a_folder_s_large_file_is_chunked(store: ObjectStore, tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    _write(folder / "weights.bin", _BASE)
    _write(folder / "config.json", b"{}")
    calls: list[int] = []
    stored = store.put_tree(folder, progress=calls.append)
    assert stored.manifest is not None and sum(calls) == len(_BASE) + 2 and len(calls) > 10
    by_path = {e.path: e.digest for e in stored.manifest.entries}
    assert list_at(store, by_path["weights.bin"]) is not None
    assert list_at(store, by_path["config.json"]) is None
    written = store.materialize(stored.digest, "dir", tmp_path / "out", filename="model")
    assert (Path(written) / "weights.bin").read_bytes() == _BASE


def test_a_file_that_changed_since_it_was_hashed_stores_no_list(store: ObjectStore,
                                                                tmp_path: Path) -> None:
    stale = hash_bytes(b"what the file held when it was hashed")
    with pytest.raises(IntegrityError, match="changed while being stored"):
        store.put_file(_write(tmp_path / "a", _BASE), digest=stale)
    assert not store.exists(stale)


def test_a_failed_local_chunk_write_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ObjectStore(str(tmp_path / "store"))
    written: list[int] = []
    real = chunked._write_all

    def failing(fd: int, data: bytes) -> None:
        if len(written) == 5:
            raise OSError(28, "No space left on device")
        written.append(len(data))
        real(fd, data)

    monkeypatch.setattr(chunked, "_write_all", failing)
    with pytest.raises(OSError, match="No space"):
        store.put_file(_write(tmp_path / "a", _BASE))
    assert not store.exists(hash_bytes(_BASE))
    assert [p for p in (tmp_path / "store").rglob("*.tmp")] == []


def test_many_objects_go_in_at_once_each_verified(store: ObjectStore) -> None:
    data = [random.Random(n).randbytes(n * 1000) for n in range(1, 9)]
    store.put_bytes(data[0])  # already there: skipped
    assert store.put_many((hash_bytes(d), [d]) for d in data) == len(data) - 1
    assert all(store.verify(hash_bytes(d)) for d in data)
    good, bad, after = b"kept", b"the real bytes", b"never reached"
    with pytest.raises(IntegrityError):
        store.put_many(iter([(hash_bytes(good), [good]), (hash_bytes(bad), [b"other bytes"]),
                             (hash_bytes(after), [after])]))
    assert store.exists(hash_bytes(good))
    assert not store.exists(hash_bytes(bad)) and not store.exists(hash_bytes(after))
    if store.is_local:
        assert list(Path(store.root).rglob("*.tmp")) == []


def test_many_objects_sync_each_folder_once_and_replace_a_damaged_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ObjectStore(str(tmp_path / "store"))
    data = [random.Random(n).randbytes(2000) for n in range(40)]
    store.put_bytes(data[0])
    damaged = Path(store.local_path(hash_bytes(data[0])))
    damaged.chmod(0o644)
    damaged.write_bytes(b"rot")
    synced: list[str] = []
    real = durability.fsync_dir
    monkeypatch.setattr(durability, "fsync_dir", lambda path: synced.append(path) or real(path))
    assert store.put_many((hash_bytes(d), [d]) for d in data) == len(data)
    folders = {os.path.dirname(store.local_path(hash_bytes(d))) for d in data}
    # every object's folder, and the store's (new folders in it), each once
    assert sorted(synced) == sorted(folders | {store.root})
    assert store.verify(hash_bytes(data[0]))


def test_storage_stats_command_shows_what_dedup_saved(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from modelyard.cli.main import app

    store = ObjectStore(str(tmp_path / "store"))
    store.put_file(_write(tmp_path / "a", _BASE))
    store.put_file(_write(tmp_path / "b", _BASE[:1000] + b"x" + _BASE[1001:]))
    result = CliRunner().invoke(app, ["storage", "stats", str(tmp_path / "store"), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["chunked_files"] == 2 and stats["logical_bytes"] == 2 * len(_BASE)
    assert stats["saved_bytes"] > 0.7 * len(_BASE) and stats["ratio"] > 1.6
    text = CliRunner().invoke(app, ["storage", "stats", str(tmp_path / "store")]).output
    assert "2 chunked file(s)" in text and "ratio" in text


def test_readers_together_stay_within_the_read_ahead_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many large files fetched at once hold at most the process-wide budget of chunks."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    store = ObjectStore(str(tmp_path / "objects"))
    digest = store.put_file(_write(tmp_path / "a", _BASE))
    budget, loading, peak = 3, [0], [0]
    monkeypatch.setattr(chunked, "_READ_BUDGET", threading.BoundedSemaphore(budget))
    lock, real = threading.Lock(), chunked.load_chunk

    def counting(*args: Any) -> bytes:
        with lock:
            loading[0] += 1
            peak[0] = max(peak[0], loading[0])
        try:
            return real(*args)
        finally:
            with lock:
                loading[0] -= 1

    monkeypatch.setattr(chunked, "load_chunk", counting)

    def read_all(_: int) -> bytes:
        with store.open_verified(digest) as stream:
            return stream.read()

    with ThreadPoolExecutor(6) as pool:
        assert all(data == _BASE for data in pool.map(read_all, range(6)))
    assert 1 <= peak[0] <= budget
    assert all(chunked._READ_BUDGET.acquire(blocking=False) for _ in range(budget))  # all back


def test_a_version_says_how_many_bytes_it_added(tmp_path: Path) -> None:
    """`versions show --added`: a fine-tuned second version adds only its changed chunks."""
    from typer.testing import CliRunner

    from modelyard.cli.main import app

    env = {"MODELYARD_HOME": str(tmp_path / "home"), "MODELYARD_USER": "ana"}
    edited = bytearray(_BASE)
    edited[50_000:52_000] = os.urandom(2000)
    runner = CliRunner()
    for i, data in enumerate((_BASE, bytes(edited))):
        assert runner.invoke(app, ["register", "m", str(_write(tmp_path / f"w{i}.bin", data))],
                             env=env).exit_code == 0
    import json

    first = json.loads(runner.invoke(app, ["versions", "show", "m", "1", "--added", "--json"],
                                     env=env).stdout)
    second = json.loads(runner.invoke(app, ["versions", "show", "m", "2", "--added", "--json"],
                                      env=env).stdout)
    assert first["added_bytes"] >= len(_BASE)  # every chunk, plus the chunk list
    assert 0 < second["added_bytes"] < len(_BASE) * 0.2
    shown = runner.invoke(app, ["versions", "show", "m", "2", "--added"], env=env).stdout
    assert "added to the store:" in shown


def test_a_dataset_version_says_how_many_bytes_it_added(tmp_path: Path) -> None:
    """`data show datasets:/N/V --added`: a day's appended rows add about their own size."""
    import json

    from typer.testing import CliRunner

    from modelyard.cli.main import app

    env = {"MODELYARD_HOME": str(tmp_path / "home"), "MODELYARD_USER": "ana"}
    appended = _BASE + random.Random(8).randbytes(4096)
    runner = CliRunner()
    for i, data in enumerate((_BASE, appended)):
        done = runner.invoke(app, ["data", "register", "rows",
                                   str(_write(tmp_path / f"rows{i}.csv", data))], env=env)
        assert done.exit_code == 0, done.output

    def added(version: int) -> int:
        shown = runner.invoke(app, ["data", "show", f"datasets:/rows/{version}", "--added",
                                    "--json"], env=env)
        assert shown.exit_code == 0, shown.output
        value: int = json.loads(shown.stdout)["added_bytes"]
        return value

    assert added(1) >= len(_BASE)
    assert 4096 <= added(2) < len(_BASE) * 0.2  # the tail chunk(s) and the new list
    shown = runner.invoke(app, ["data", "show", "datasets:/rows/2", "--added"], env=env).stdout
    assert "added to the store:" in shown


def test_a_flush_returns_only_once_what_a_concurrent_flush_took_is_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pending = durability.PendingDirs()
    events: list[str] = []
    inside, release = threading.Event(), threading.Event()

    def slow_sync(path: str) -> None:
        inside.set()
        release.wait(10)
        events.append(f"synced {os.path.basename(path)}")

    monkeypatch.setattr(durability, "fsync_dir", slow_sync)
    pending.add(str(tmp_path / "a"))  # the first flush takes it, and is slow to sync it
    first = threading.Thread(target=pending.flush)
    first.start()
    assert inside.wait(10)

    def second_batch() -> None:  # its folder was taken by the first flush
        pending.flush()
        events.append("second returned")

    second = threading.Thread(target=second_batch)
    second.start()
    second.join(0.2)
    release.set()
    first.join(10)
    second.join(10)
    assert events == ["synced a", "second returned"]


def test_concurrent_batches_each_return_after_their_objects_are_synced(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ObjectStore(str(tmp_path / "store"))
    synced: set[str] = set()  # files (by the name they were written under) and folders
    lock = threading.Lock()
    real_fsync, real_dir = os.fsync, durability.fsync_dir

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            synced.add(os.readlink(f"/proc/self/fd/{fd}"))

    def fsync_dir(path: str) -> None:
        real_dir(path)
        with lock:
            synced.add(path)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(durability, "fsync_dir", fsync_dir)
    renamed: dict[str, str] = {}  # object path -> the temporary file it was written as
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        with lock:
            renamed[os.fspath(dst)] = os.fspath(src)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    unsynced: list[str] = []

    def batch(seed: int) -> None:
        data = [random.Random(seed * 100 + n).randbytes(3000) for n in range(30)]
        store.put_many((hash_bytes(d), [d]) for d in data)
        with lock:  # what this batch's acknowledgement would promise
            for d in data:
                path = store.local_path(hash_bytes(d))
                if renamed[path] not in synced or os.path.dirname(path) not in synced:
                    unsynced.append(path)

    threads = [threading.Thread(target=batch, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(renamed) == 120 and unsynced == []
