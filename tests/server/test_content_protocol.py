"""Content by digest between a client and the server: same digests as embedded, only
missing bytes move, nothing unverified becomes visible or is read, uploads resume."""

from __future__ import annotations

import http.client
import io
import os
import random
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.client.http_content import HttpContent
from modelyard.domain.principal import Role
from modelyard.errors import IntegrityError, StorageUnavailable
from modelyard.server.content_routes import MAX_FRAME
from modelyard.services.data.transfer import Objects
from modelyard.storage.content import chunking
from modelyard.storage.content.chunk_lists import ChunkList
from modelyard.storage.content.chunked import list_at
from modelyard.storage.content.chunking import ChunkPolicy, cut_stream
from modelyard.storage.content.hashing import hash_bytes, hash_file
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.index.state_cache import StateCache, hash_paths_cached
from server.conftest import LiveServer, Served, bearer

SMALL = ChunkPolicy(threshold=64 * 1024, avg_size=8192, min_size=2048, max_size=32768)
"""In-process stores chunk files of 64 KiB and up into ~8 KiB pieces: a few dozen chunks."""
CONTENT = "/api/v1/content"
DIGEST = "blake3:" + "ab" * 32


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every store made in this process chunks with SMALL (a live server keeps the default)."""
    monkeypatch.setattr(chunking, "DEFAULT_POLICY", SMALL)


def _data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


@dataclass
class Recorder:
    """Every request a client sends: (method, path, query, Content-Length)."""

    seen: list[tuple[str, str, str, int]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> None:
        self.seen.append((request.method, request.url.path, request.url.query.decode(),
                          int(request.headers.get("content-length", 0))))

    def uploads(self) -> list[tuple[str, str, str, int]]:
        """PUTs of one object and POSTs of a batch of them."""
        return [r for r in self.seen if r[0] == "PUT" or r[1] == f"{CONTENT}/batch"]

    def content_bytes(self) -> int:
        """Bytes of whole files and chunks sent, batches' frame headers included (chunk
        lists are sent with chunked=1)."""
        return sum(n for _, _, query, n in self.uploads() if "chunked" not in query)


@pytest.fixture
def recorded(served: Served) -> Iterator[Recorder]:
    recorder = Recorder()
    served.client.event_hooks["request"].append(recorder)
    yield recorder
    served.client.event_hooks["request"].remove(recorder)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Small files, a duplicate, an empty and an executable file, one chunked file."""
    root = tmp_path / "tree"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "weights.bin").write_bytes(_data(200_000))  # chunked (SMALL)
    (root / "config.json").write_text('{"layers": 3}')
    (root / "sub" / "copy.json").write_text('{"layers": 3}')
    (root / "sub" / "deep" / "empty").write_bytes(b"")
    run = root / "sub" / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    return root


def _files(root: Path) -> dict[str, tuple[bytes, bool]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), bool(p.stat().st_mode & stat.S_IXUSR))
            for p in sorted(root.rglob("*")) if p.is_file()}


# -- round trips, digests equal to the embedded registry's ----------------------------

def test_a_file_round_trips_with_the_embedded_digest(served: Served, tmp_path: Path) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(_data(5000))
    content = HttpContent(served.client)
    stored = content.put_tree(source)
    embedded = ObjectStore(str(tmp_path / "embedded")).put_tree(source)
    assert stored == embedded
    assert served.backend.store.verify(stored.digest)
    out = content.materialize(stored.digest, "file", tmp_path / "out", filename="m.pkl")
    assert Path(out).read_bytes() == source.read_bytes()


def test_a_tree_and_its_chunks_match_the_embedded_store(served: Served, tree: Path,
                                                        tmp_path: Path) -> None:
    counted: list[int] = []
    stored = HttpContent(served.client).put_tree(tree, counted.append)
    embedded_store = ObjectStore(str(tmp_path / "embedded"))
    embedded = embedded_store.put_tree(tree)
    assert stored == embedded  # digest, kind, size, count and the manifest itself
    assert sum(counted) == stored.size
    weights = hash_file(tree / "weights.bin")
    here, there = list_at(embedded_store, weights), list_at(served.backend.store, weights)
    assert here is not None and here == there and len(here.chunks) > 5
    out = HttpContent(served.client).materialize(stored.digest, "dir", tmp_path / "out")
    assert _files(Path(out)) == _files(tree)


def test_a_state_cache_gives_digests_and_the_same_chunks(served: Served, tree: Path,
                                                         tmp_path: Path) -> None:
    with StateCache(tmp_path / "state.db") as cache:
        hash_paths_cached([tree / "weights.bin"], cache)  # known before the upload
        stored = HttpContent(served.client).put_tree(tree, cache=cache)
    embedded_store = ObjectStore(str(tmp_path / "embedded"))
    assert stored == embedded_store.put_tree(tree)
    weights = hash_file(tree / "weights.bin")
    assert list_at(served.backend.store, weights) == list_at(embedded_store, weights)


def test_a_large_single_file_goes_in_chunks(served: Served, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(_data(300_000, seed=3))
    stored = HttpContent(served.client).put_tree(source)
    assert stored.digest == hash_file(source)
    listed = list_at(served.backend.store, stored.digest)
    assert listed is not None and listed.size == 300_000
    got = served.client.get(f"{CONTENT}/{stored.digest}")
    assert got.status_code == 200 and got.content == source.read_bytes()


@pytest.mark.s3
def test_round_trips_through_a_server_on_s3(serve: Callable[..., Served], tree: Path,
                                            tmp_path: Path, s3_location: Any) -> None:
    on_s3 = serve(store_uri=s3_location.url)
    content = HttpContent(on_s3.client)
    stored = content.put_tree(tree)
    assert stored == ObjectStore(str(tmp_path / "embedded")).put_tree(tree)
    assert list_at(on_s3.backend.store, hash_file(tree / "weights.bin")) is not None
    claimed = hash_bytes(b"right")
    refused = on_s3.client.put(f"{CONTENT}/{claimed}", content=b"wrong")
    assert refused.status_code == 400 and not on_s3.backend.store.exists(claimed)
    out = content.materialize(stored.digest, "dir", tmp_path / "out")
    assert _files(Path(out)) == _files(tree)


# -- only what the server lacks moves ------------------------------------------------

def test_putting_known_content_again_sends_no_file_bytes(served: Served, tree: Path,
                                                         recorded: Recorder) -> None:
    content = HttpContent(served.client)
    first = content.put_tree(tree)
    unique = first.size - len('{"layers": 3}')  # copy.json is config.json's content
    assert content.bytes_sent.total == unique and recorded.content_bytes() > unique
    recorded.seen.clear()
    counted: list[int] = []
    assert content.put_tree(tree, counted.append) == first
    assert recorded.uploads() == [] and content.bytes_sent.total == unique
    assert sum(counted) == first.size  # progress still covers the whole tree


def test_an_edited_large_file_sends_only_its_new_chunks(served: Served, tree: Path,
                                                        recorded: Recorder) -> None:
    content = HttpContent(served.client)
    content.put_tree(tree)
    weights = tree / "weights.bin"
    data = bytearray(weights.read_bytes())
    data[100_000:100_010] = b"x" * 10
    weights.write_bytes(bytes(data))
    recorded.seen.clear()
    stored = content.put_tree(tree)
    assert stored.manifest is not None and stored.manifest.by_path[
        "weights.bin"].digest == hash_bytes(bytes(data))
    assert 0 < recorded.content_bytes() <= 3 * SMALL.max_size  # the chunk(s) around the edit


def test_put_cached_uploads_what_a_data_cache_holds(served: Served, tree: Path,
                                                    tmp_path: Path,
                                                    recorded: Recorder) -> None:
    cache = ObjectStore(str(tmp_path / "cache"), chunked=False)  # a workspace cache
    folder = cache.put_tree(tree)
    assert folder.manifest is not None
    objects = Objects({e.digest: e.size for e in folder.manifest.entries}, [folder.digest])
    content = HttpContent(served.client)
    content.put_cached(cache, objects)
    store = served.backend.store
    assert store.exists_many(objects.all()) == set(objects.all())
    assert list_at(store, hash_file(tree / "weights.bin")) is not None  # chunked there
    recorded.seen.clear()
    content.put_cached(cache, objects)
    assert recorded.uploads() == []


# -- what the server refuses, and leaves invisible ---------------------------------------

def _temp_files(store: ObjectStore) -> list[Path]:
    return [p for p in Path(store.root).rglob("*") if p.name.endswith(".tmp")]


def test_a_body_that_does_not_hash_to_its_digest_is_refused_and_invisible(
        served: Served) -> None:
    claimed = hash_bytes(b"the real weights")
    refused = served.client.put(f"{CONTENT}/{claimed}", content=b"something else")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["details"]["digest"]) == ("invalid_input", claimed)
    assert set(error) == {"code", "message", "hint", "details"}
    assert not served.backend.store.exists(claimed)
    assert _temp_files(served.backend.store) == []
    assert served.client.get(f"{CONTENT}/{claimed}").status_code == 404
    stored = served.client.put(f"{CONTENT}/{claimed}", content=b"the real weights")
    assert (stored.status_code, stored.json()["stored"]) == (201, True)
    again = served.client.put(f"{CONTENT}/{claimed}", content=b"the real weights")
    assert (again.status_code, again.json()["stored"]) == (200, False)  # idempotent


def _frames(*objects: tuple[str, bytes]) -> bytes:
    return b"".join(f"{d} {len(data)}\n".encode() + data for d, data in objects)


def test_a_batch_stores_each_frame_once_it_verified(served: Served) -> None:
    objects = [(hash_bytes(d), d) for d in (b"one", b"", _data(40_000, seed=4))]
    answer = served.client.post(f"{CONTENT}/batch", content=_frames(*objects))
    assert answer.json() == {"received": 3, "stored": 3}
    assert all(served.backend.store.verify(d) for d, _ in objects)
    again = served.client.post(f"{CONTENT}/batch", content=_frames(*objects))
    assert again.json() == {"received": 3, "stored": 0}


def test_a_batch_ends_at_a_frame_that_does_not_verify(served: Served) -> None:
    good, bad, after = b"kept", b"the real weights", b"never stored"
    refused = served.client.post(f"{CONTENT}/batch", content=_frames(
        (hash_bytes(good), good), (hash_bytes(bad), b"something else"),
        (hash_bytes(after), after)))
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["details"]["digest"]) == ("invalid_input", hash_bytes(bad))
    store = served.backend.store
    assert store.exists(hash_bytes(good))
    assert not store.exists(hash_bytes(bad)) and not store.exists(hash_bytes(after))
    assert _temp_files(store) == []


def test_a_malformed_batch_is_refused(served: Served) -> None:
    data = b"weights"
    digest = hash_bytes(data)
    for body in [b"garbage\n" + data, f"{digest}\n".encode() + data,
                 f"{digest} 7".encode(), f"{digest} -7\n".encode() + data,
                 f"{digest.upper()} 7\n".encode() + data,
                 f"{digest.replace(':', '%3A')} 7\n".encode() + data,
                 f"{digest} 8\n".encode() + data,  # ends inside the frame
                 f"{digest} {MAX_FRAME + 1}\n".encode() + data,
                 f"{digest} 7 \n".encode() + data, b"x" * 100_000]:
        answer = served.client.post(f"{CONTENT}/batch", content=body)
        assert answer.status_code == 400, body[:90]
        assert answer.json()["error"]["code"] == "invalid_input"
    assert not served.backend.store.exists(digest)


def test_a_file_changed_after_it_was_cut_stores_no_list(served: Served,
                                                        tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(_data(200_000, seed=6))

    def edit(sent: int) -> None:  # the file is cut; its first chunk has just been read
        if sent and source.read_bytes()[-4:] != b"edit":
            with open(source, "r+b") as f:
                f.seek(-4, os.SEEK_END)
                f.write(b"edit")

    with pytest.raises(IntegrityError, match="changed while being stored"):
        HttpContent(served.client).put_tree(source, edit)
    assert not served.backend.store.exists(hash_bytes(_data(200_000, seed=6)))


def test_a_chunk_list_needs_its_chunks_and_their_assembly(served: Served) -> None:
    data = _data(100_000, seed=5)
    digest = hash_bytes(data)
    cuts = list(cut_stream(io.BytesIO(data), SMALL))
    document = ChunkList.of(digest, cuts).to_bytes()
    url = f"{CONTENT}/{digest}?chunked=1"
    for cut in cuts[:-1]:
        chunk = data[cut.offset:cut.offset + cut.size]
        assert served.client.put(f"{CONTENT}/{cut.digest}", content=chunk).status_code == 201
    early = served.client.put(url, content=document)
    assert early.status_code == 400 and early.json()["error"]["details"]["chunks"] == [
        cuts[-1].digest]
    last = cuts[-1]
    served.client.put(f"{CONTENT}/{last.digest}", content=data[last.offset:])
    other = hash_bytes(data[::-1])  # a list naming a file its chunks do not make up
    wrong = ChunkList(other, len(data), ChunkList.of(digest, cuts).chunks).to_bytes()
    assembled = served.client.put(f"{CONTENT}/{other}?chunked=1", content=wrong)
    assert assembled.status_code == 400 and "assemble" in assembled.json()["error"]["message"]
    small = _data(5000)
    tiny = ChunkList.of(hash_bytes(small), list(cut_stream(
        io.BytesIO(small), ChunkPolicy(0, 1024, 256, 4096)))).to_bytes()
    whole = served.client.put(f"{CONTENT}/{hash_bytes(small)}?chunked=1", content=tiny)
    assert whole.status_code == 400 and "stored whole" in whole.json()["error"]["message"]
    not_a_list = served.client.put(url, content=b"{}")
    assert not_a_list.status_code == 400
    store = served.backend.store
    assert not store.exists(digest) and not store.exists(other)
    assert served.client.put(url, content=document).status_code == 201
    assert served.client.get(f"{CONTENT}/{digest}").content == data


# -- downloads: ranges, verification ---------------------------------------------------

def test_ranges_of_whole_and_chunked_content(served: Served, tmp_path: Path) -> None:
    plain, chunked = _data(3000, seed=1), _data(150_000, seed=2)
    client = served.client
    assert client.put(f"{CONTENT}/{hash_bytes(plain)}", content=plain).status_code == 201
    (tmp_path / "chunked.bin").write_bytes(chunked)
    HttpContent(client).put_tree(tmp_path / "chunked.bin")
    assert list_at(served.backend.store, hash_bytes(chunked)) is not None
    for data in (plain, chunked):
        url, n = f"{CONTENT}/{hash_bytes(data)}", len(data)
        for header, (start, stop) in {"bytes=10-19": (10, 20), f"bytes={n - 10}-": (n - 10, n),
                                      "bytes=-5": (n - 5, n), "bytes=0-999999": (0, n),
                                      "bytes=1000-120000": (1000, min(120_001, n))}.items():
            got = client.get(url, headers={"range": header})
            assert got.status_code == 206, header
            assert got.headers["content-range"] == f"bytes {start}-{stop - 1}/{n}"
            assert got.content == data[start:stop]
            assert int(got.headers["content-length"]) == stop - start
        outside = client.get(url, headers={"range": f"bytes={n}-"})
        assert outside.status_code == 416
        assert outside.headers["content-range"] == f"bytes */{n}"
        assert outside.json()["error"]["code"] == "invalid_input"
        ignored = client.get(url, headers={"range": "bytes=9-2"})  # invalid: whole content
        assert (ignored.status_code, ignored.content) == (200, data)
        head = client.head(url)
        assert head.status_code == 200 and head.content == b""
        assert (head.headers["content-length"], head.headers["accept-ranges"]) == (
            str(n), "bytes")


def _corrupt(store: ObjectStore, digest: str, at: int = 0) -> None:
    path = Path(store.local_path(digest))
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupt_object_is_an_error_not_bytes(served: Served, tree: Path,
                                                tmp_path: Path) -> None:
    content = HttpContent(served.client)
    stored = content.put_tree(tree)
    assert stored.manifest is not None
    config = stored.manifest.by_path["config.json"].digest
    _corrupt(served.backend.store, config)
    got = served.client.get(f"{CONTENT}/{config}")
    assert got.status_code == 500 and got.json()["error"]["code"] == "integrity_error"
    with pytest.raises(IntegrityError):
        content.materialize(stored.digest, "dir", tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_corrupt_chunk_is_an_error_not_bytes(served: Served, tree: Path,
                                               tmp_path: Path) -> None:
    content = HttpContent(served.client)
    stored = content.put_tree(tree / "weights.bin")
    listed = list_at(served.backend.store, stored.digest)
    assert listed is not None
    _corrupt(served.backend.store, listed.chunks[0][0])
    # read whole, the file is hashed whole and its end held back: the response is cut off
    with pytest.raises(RuntimeError, match="response already started"):
        served.client.get(f"{CONTENT}/{stored.digest}")
    first = served.client.get(f"{CONTENT}/{stored.digest}", headers={"range": "bytes=0-9"})
    assert first.status_code == 500  # a range verifies each chunk it covers before sending


@pytest.mark.parametrize("chunked", [False, True])
def test_a_live_server_cuts_off_a_stream_that_does_not_verify(live_server: LiveServer,
                                                               tmp_path: Path,
                                                               chunked: bool) -> None:
    policy = chunking.ChunkPolicy()  # the live server's: the default
    # whole (below the threshold) and several pieces long, or chunked: a middle chunk rots
    data = _data(policy.threshold if chunked else 3 * 1024 * 1024, seed=9)
    digest = hash_bytes(data)
    store = ObjectStore(live_server.store_uri)
    with live_server.client() as client:
        if chunked:
            (tmp_path / "big.bin").write_bytes(data)
            HttpContent(client).put_tree(tmp_path / "big.bin")
            listed = list_at(store, digest)
            assert listed is not None
            _corrupt(store, listed.chunks[len(listed.chunks) // 2][0])
        else:
            assert client.put(f"{CONTENT}/{digest}", content=data).status_code == 201
            _corrupt(store, digest, at=len(data) // 2)
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError), client.stream(
                "GET", f"{CONTENT}/{digest}") as response:
            assert response.status_code == 200
            for piece in response.iter_bytes():
                received += piece
        assert len(received) < len(data)  # the end never arrives
        out = tmp_path / "out"
        # Each retry resumes with a range; once only the held-back end is left, the server
        # fails before sending anything, with an integrity_error body. Either way: refused.
        with pytest.raises((IntegrityError, StorageUnavailable)):
            HttpContent(client, backoff=0).materialize(digest, "file", out, filename="x.bin")
        assert not (out / "x.bin").exists() and list(out.iterdir()) == []


# -- the boundary: digests, tokens -------------------------------------------------------

BAD_DIGESTS = [
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%5c..%5cwindows%5cwin.ini",
    "..\\..\\etc\\passwd",
    "/etc/passwd",
    "blake3:" + "AB" * 32,
    "sha256:" + "ab" * 32,
    "blake3:" + "ab" * 31,
    "blake3:" + "ab" * 32 + "/x",
    "blake3%3A" + "ab" * 32,
    "blake3:" + "ab" * 32 + "%00",
    "blake3:%2e%2e%2f" + "ab" * 31,
    "",
]


def test_malformed_or_traversing_digests_are_refused(served: Served) -> None:
    for digest in BAD_DIGESTS:
        url = f"{CONTENT}/{digest}"
        for method in ("GET", "PUT", "HEAD"):
            answer = served.client.request(method, url,
                                           content=b"x" if method == "PUT" else None)
            assert answer.status_code == 400, (method, digest)
            if method != "HEAD":
                assert answer.json()["error"]["code"] == "invalid_input", (method, digest)
        listed = served.client.post(f"{CONTENT}/missing", json={"digests": [digest]})
        assert listed.status_code == 400, digest
    assert _temp_files(served.backend.store) == [] and not Path(
        served.backend.store.root).exists()  # nothing was ever written


def test_dot_segments_sent_raw_to_a_live_server_are_refused(live_server: LiveServer) -> None:
    """httpx normalises '..' away, so these go out as written, over a bare connection."""
    for target in ["/api/v1/content/..", "/api/v1/content/../../etc/passwd",
                   "/api/v1/content/..\\..\\etc\\passwd", f"/api/v1/content/{DIGEST}/../x",
                   "/api/v1/content/./" + DIGEST]:
        connection = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=10)
        try:
            connection.request("GET", target, headers=bearer(live_server.token))
            answer = connection.getresponse()
            assert answer.status == 400, target
            assert b'"invalid_input"' in answer.read()
        finally:
            connection.close()


def test_missing_batches_are_capped(served: Served) -> None:
    too_many = served.client.post(f"{CONTENT}/missing", json={"digests": [DIGEST] * 10_001})
    assert too_many.status_code == 400
    answered = served.client.post(f"{CONTENT}/missing", json={"digests": [DIGEST, DIGEST]})
    assert answered.json() == {"missing": [DIGEST]}


def test_tokens_and_roles(served: Served) -> None:
    data = b"weights"
    url = f"{CONTENT}/{hash_bytes(data)}"
    anonymous = {"Authorization": ""}
    batch = f"{hash_bytes(data)} {len(data)}\n".encode() + data
    for answer in (served.client.put(url, content=data, headers=anonymous),
                   served.client.post(f"{CONTENT}/batch", content=batch, headers=anonymous),
                   served.client.get(url, headers=anonymous),
                   served.client.post(f"{CONTENT}/missing", json={"digests": []},
                                      headers=anonymous)):
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthenticated"
    viewer = bearer(served.token_for("vic", Role.VIEWER))
    for answer in (served.client.put(url, content=data, headers=viewer),
                   served.client.post(f"{CONTENT}/batch", content=batch, headers=viewer),
                   served.client.post(f"{CONTENT}/missing", json={"digests": []},
                                      headers=viewer)):
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "permission_denied"
    assert not served.backend.store.exists(hash_bytes(data))
    assert served.client.put(url, content=data).status_code == 201
    assert served.client.get(url, headers=viewer).content == data
    events = served.client.get("/api/v1/audit").json()["items"]
    denied = [e["after"] for e in events if e["action"] == "access.denied"]
    assert [(d["user"], d["operation"]) for d in denied] == [
        (None, "put_content"), (None, "put_content_batch"), ("vic", "put_content"),
        ("vic", "put_content_batch")]


# -- resuming across a SIGKILL ---------------------------------------------------------

@pytest.mark.parametrize("where", ["folder", pytest.param(
    "s3", marks=[pytest.mark.s3, pytest.mark.slow])])
def test_an_upload_cut_by_a_server_kill_resumes_from_the_chunks_received(
        start_server: Callable[..., LiveServer], tmp_path: Path, where: str,
        request: pytest.FixtureRequest) -> None:
    live_server = start_server(store_uri=request.getfixturevalue("s3_location").url
                               if where == "s3" else None)
    policy = chunking.ChunkPolicy()  # the live server's: the default
    source = tmp_path / "model.safetensors"
    source.write_bytes(_data(policy.threshold + 1024 * 1024, seed=11))
    whole = hash_file(source)
    with open(source, "rb") as f:
        cuts = {c.digest: c.size for c in cut_stream(f, policy)}
    store = ObjectStore(live_server.store_uri)
    kill_after = len(cuts) // 3  # chunks sent; the rest of the batch never leaves
    counted: list[int] = []

    def kill_midway(n: int) -> None:  # progress: called as each chunk of a batch is sent
        counted.append(n)
        if len(counted) == 1 + kill_after:  # the first call counts what was already there
            deadline = time.monotonic() + 60
            while not any(store.exists(d) for d in cuts) and time.monotonic() < deadline:
                time.sleep(0.05)
            live_server.kill()  # in the middle of the batch's body

    with live_server.client() as client, pytest.raises(StorageUnavailable):
        HttpContent(client, retries=0).put_tree(source, kill_midway)
    received = {d for d in cuts if store.exists(d)}
    assert 0 < len(received) <= kill_after < len(cuts)
    assert not store.exists(whole)
    assert set(store.iter_digests()) == received  # only whole, verified chunks are there
    assert all(store.verify(d) for d in received)

    live_server.start()
    absent_until_the_end: list[bool] = []

    def watch(request: httpx.Request) -> None:
        if request.method == "PUT" and "chunked" in request.url.query.decode():
            absent_until_the_end.append(not store.exists(whole))

    with live_server.client(event_hooks={"request": [watch]}) as client:
        content = HttpContent(client)
        stored = content.put_tree(source)
        assert content.bytes_sent.total == sum(cuts[d] for d in set(cuts) - received)
        assert absent_until_the_end == [True]
        assert stored.digest == whole
        out = HttpContent(client).materialize(whole, "file", tmp_path / "out", filename="m")
    assert Path(out).read_bytes() == source.read_bytes()
    assert list_at(store, whole) is not None

