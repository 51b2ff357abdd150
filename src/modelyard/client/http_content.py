"""The remote content plane: the caller's files hashed here, moved to a server by digest.

``HttpContent`` is the ``ContentStore`` a remote client hands to ``Files``. It hashes a
tree exactly as the embedded store does (the same manifest; large files cut with the
server store's own chunk policy, which it asks for once), so a digest is the same on both
faces. It asks the server which digests it lacks and sends only those: small files many to
a request (``POST /api/v1/content/batch``, ~32 MiB of frames each, verified by the server,
so not hashed here a second time), larger whole files streamed from disk, a large file's
chunks batch by batch while it is still being cut (each batch asked about first) and its
chunk list as soon as they are stored, a directory's manifest last.
Re-sending known content therefore moves no file bytes, and an upload cut off by a
dropped connection or a server restart resumes from the objects that arrived. Downloads
stream into a temporary file, are verified against their digest and renamed into place
(``tree_checkout`` does the tree around them). Connection failures of GETs, of content
PUTs (idempotent by digest) and of batches (sent again without what arrived) are retried
with backoff; an interrupted download resumes with a range request.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, NamedTuple, TypeVar

import httpx
from httpcore._sync.http11 import HTTP11Connection

from modelyard.domain.content import ContentKind
from modelyard.errors import IntegrityError, InvalidInput, ModelyardError, StorageUnavailable
from modelyard.services.data.transfer import Objects
from modelyard.storage.content import tree_checkout
from modelyard.storage.content.chunk_lists import ChunkList
from modelyard.storage.content.chunked import SentBytes
from modelyard.storage.content.chunking import ChunkPolicy, Cut, cut_stream
from modelyard.storage.content.hashing import (
    Progress,
    format_digest,
    hash_bytes,
    hash_file,
    new_hasher,
    parse_digest,
)
from modelyard.storage.content.manifest import Entry, Manifest, scan_directory
from modelyard.storage.content.objects import (
    DEFAULT_MAX_BYTES,
    ObjectStore,
    StoredTree,
    _make_temp,
    _unlink_quietly,
)
from modelyard.storage.index.state_cache import StateCache, hash_paths_cached
from modelyard.storage.parallel import run_parallel

CONTENT = "/api/v1/content"
JOBS = 4  # files hashed, batches and downloads in flight: enough to fill a link, few
# enough for a server (8 batches in flight measured no faster than 4 on 2 cores)
BATCH_BYTES = 32 * 1024 * 1024  # objects per upload request: ~32 chunks, one folder fsync
_PIECE = 1024 * 1024  # bytes per read from disk or from a response
_RETRYABLE = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
# httpcore reads a response 64 KiB at a time, each read one more trip through h11 and
# httpcore in Python: about a quarter of the client's CPU in a 1 GiB download. A read
# returns what has arrived, so reading up to _PIECE changes nothing for small answers.
HTTP11Connection.READ_NUM_BYTES = max(HTTP11Connection.READ_NUM_BYTES, _PIECE)
T = TypeVar("T")


class _Limits(NamedTuple):
    """What the server says of itself once: its store's chunk policy, how many digests a
    ``missing`` call may ask, and how large an object may travel in a batch."""

    policy: ChunkPolicy | None
    max_batch: int
    max_frame: int


@dataclass(frozen=True, slots=True)
class _Piece:
    """Bytes of a local file that go as one object of a batch: a chunk, or a small file."""

    path: str
    offset: int
    size: int
    digest: str

    def header(self) -> bytes:
        return f"{self.digest} {self.size}\n".encode("ascii")


@dataclass
class _Source:
    """One local file to store: its digest (None until a large file is cut) and, for a
    chunked file, its cuts once made."""

    path: str
    size: int
    digest: str | None
    cuts: list[Cut] | None = None

    def known(self) -> str:
        assert self.digest is not None, f"{self.path} was not hashed"
        return self.digest


class HttpContent:
    """The content plane of a server, over ``http`` (``base_url`` the server, the caller's
    token in its headers). ``bytes_sent`` counts the file bytes actually uploaded (whole
    objects and chunks, retries included; not manifests or chunk lists)."""

    def __init__(self, http: httpx.Client, *, jobs: int = JOBS, retries: int = 4,
                 backoff: float = 0.25) -> None:
        self.http = http
        self.jobs = jobs
        self.retries = retries
        self.backoff = backoff
        self.bytes_sent = SentBytes()
        self._limits: _Limits | None = None

    # -- the ContentStore protocol -------------------------------------------------------

    def put_tree(self, path: str | os.PathLike[str], progress: Progress | None = None, *,
                 cache: StateCache | None = None) -> StoredTree:
        source = os.fspath(path)
        if not os.path.exists(source):
            raise InvalidInput(f"path not found: {source}", path=source)
        if not os.path.isdir(source):
            (single,) = self._upload([(source, os.path.getsize(source))], cache, progress)
            return StoredTree(single.known(), "file", single.size, 1, None)
        files = scan_directory(source)
        stored = self._upload([(f.abspath, f.size) for f in files], cache, progress)
        manifest = Manifest.of_scan(files, {f.abspath: s.known()
                                            for f, s in zip(files, stored, strict=True)})
        self._put_documents([(manifest.digest, manifest.to_bytes())])
        return StoredTree(manifest.digest, "dir", manifest.total_size, manifest.file_count,
                          manifest)

    def describe(self, path: str | os.PathLike[str]) -> StoredTree | None:
        """A single file that is not chunked, hashed here: registering content the server
        already has then takes one request (the metadata call) instead of two. Chunked
        files and directories are not described (their digests come from cutting and
        uploading, or from many files)."""
        source = os.fspath(path)
        if not os.path.isfile(source):
            return None
        size = os.path.getsize(source)
        if _chunked(self._server_limits().policy, size):
            return None
        return StoredTree(hash_file(source), "file", size, 1, None)

    def put_cached(self, cache: ObjectStore, objects: Objects,
                   progress: Progress | None = None) -> None:
        self._store([_Source(cache.local_path(d), size, d) for d, size in objects.files.items()],
                    progress)
        self._put_documents([(d, cache.get_bytes(d)) for d in objects.manifests])

    def materialize(self, digest: str, kind: ContentKind, dest_dir: str | os.PathLike[str],
                    filename: str | None = None, progress: Progress | None = None) -> str:
        return tree_checkout.materialize(self, digest, kind, dest_dir, filename, progress,
                                         self.jobs)

    # -- tree_checkout's source: verified downloads --------------------------------------

    def get_file(self, digest: str, dest: str | os.PathLike[str],
                 progress: Progress | None = None) -> None:
        """Write the content to ``dest`` atomically; nothing appears unless it verified."""
        target = os.path.abspath(dest)
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        fd, tmp = _make_temp(directory, 0o666)
        try:
            with os.fdopen(fd, "wb") as out:
                self._download(digest, out, progress)
            os.replace(tmp, target)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def get_manifest(self, digest: str) -> Manifest:
        buffer = io.BytesIO()
        self._download(digest, buffer, None, limit=DEFAULT_MAX_BYTES)
        return Manifest.from_bytes(buffer.getvalue())

    def fetch_entry(self, entry: Entry, dest: str, progress: Progress | None = None) -> None:
        """Create ``dest`` (which must not exist) with the entry's verified content; the
        checkout's staging folder takes it away on failure."""
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o777 if entry.executable else 0o666)
        with os.fdopen(fd, "wb") as out:
            self._download(entry.digest, out, progress)

    # -- uploading -------------------------------------------------------------------------

    def missing(self, digests: Iterable[str]) -> set[str]:
        """The digests the server lacks, asked in batches of its cap (not retried: the
        caller decides what an unanswered question means)."""
        try:
            return self._lacking(digests)
        except httpx.TransportError as exc:
            raise self._unreachable(exc, "asking which content is missing") from exc

    def _lacking(self, digests: Iterable[str]) -> set[str]:
        """``missing`` whose connection failures are left to the caller (a retry)."""
        wanted = list(dict.fromkeys(digests))
        batch = self._server_limits().max_batch
        lacking: set[str] = set()
        for i in range(0, len(wanted), batch):
            response = self.http.post(f"{CONTENT}/missing",
                                      json={"digests": wanted[i:i + batch]})
            lacking.update(self._checked(response).json()["missing"])
        return lacking

    def _upload(self, files: Sequence[tuple[str, int]], cache: StateCache | None,
                progress: Progress | None) -> list[_Source]:
        """Store ``files`` (path, size), returning each one's digest. A large file's digest
        comes from the state cache or, without one, from the cut that uploads it (hashing
        first would read it twice)."""
        policy = self._server_limits().policy
        to_cut = {p for p, n in files if cache is None and _chunked(policy, n)}
        hashed = hash_paths_cached([p for p, _ in files if p not in to_cut], cache, self.jobs)
        sources = [_Source(p, n, hashed.get(p)) for p, n in files]
        self._store(sources, progress)
        return sources

    def _store(self, files: list[_Source], progress: Progress | None) -> None:
        """Send what the server lacks of ``files`` (filling in the digests of those cut
        here): small files many to a batch, larger whole files streamed, a large file as
        the batches of its missing chunks, sent while the file is still being cut, and its
        chunk list as soon as they are all stored."""
        policy, _, max_frame = self._server_limits()
        first: dict[str, _Source] = {}
        for f in files:
            if f.digest is not None:
                first.setdefault(f.digest, f)
        lacking = self.missing(first)
        whole = [f for d, f in first.items() if d in lacking and not _chunked(policy, f.size)]
        large = [*(f for d, f in first.items() if d in lacking and _chunked(policy, f.size)),
                 *(f for f in files if f.digest is None)]
        pieces = [_Piece(f.path, 0, f.size, f.known()) for f in whole if f.size <= max_frame]
        streamed = [f for f in whole if f.size > max_frame]
        if progress is not None:  # what is already there counts at once
            progress(sum(f.size for f in files) - sum(f.size for f in (*whole, *large)))
        with ThreadPoolExecutor(self.jobs) as senders:
            sends = [*(senders.submit(self._send_file, f, progress) for f in streamed),
                     *(senders.submit(self._send_batch, b, progress) for b in _batches(pieces))]
            with _cancelled_on_failure(sends):
                if policy is not None and large:
                    rules = policy
                    run_parallel(lambda f: self._send_chunked(f, rules, senders, progress),
                                 large, self.jobs)
                for send in sends:
                    send.result()

    def _send_chunked(self, f: _Source, policy: ChunkPolicy, senders: ThreadPoolExecutor,
                      progress: Progress | None) -> None:
        """Cut ``f`` and, as each batch's worth of chunks is cut, send (by ``senders``) the
        ones the server lacks, then the chunk list unless the server has the file; a digest
        from the state cache (known lacking) must be the one the cut gives (else the file
        changed, and no list is sent)."""
        sends: list[Future[None]] = []
        cuts: list[Cut] = []
        batch: list[_Piece] = []
        seen: set[str] = set()
        with _cancelled_on_failure(sends):
            with open(f.path, "rb", buffering=0) as src:
                whole = new_hasher(os.fstat(src.fileno()).st_size)
                for cut in cut_stream(src, policy, whole):
                    cuts.append(cut)
                    if cut.digest in seen:  # a repeat within the file goes once
                        if progress is not None:
                            progress(cut.size)
                        continue
                    seen.add(cut.digest)
                    if batch and sum(p.size for p in batch) + cut.size > BATCH_BYTES:
                        sends.append(senders.submit(self._send_lacking, batch, progress))
                        batch = []
                        _raise_failed(sends)
                    batch.append(_Piece(f.path, cut.offset, cut.size, cut.digest))
            if batch:
                sends.append(senders.submit(self._send_lacking, batch, progress))
            digest = format_digest(whole.hexdigest())
            if f.digest is not None:
                _check_unchanged(f.path, f.digest, digest)
            for send in sends:
                send.result()
        known, f.digest, f.cuts = f.digest is not None, digest, cuts
        if known or self._retrying(lambda: self._lacking([digest]),
                                   "asking which content is missing"):
            self._send_list(f)  # (a file cut here may have been on the server already)

    def _send_lacking(self, batch: list[_Piece], progress: Progress | None) -> None:
        """Send the pieces of ``batch`` the server lacks (the others count as sent)."""
        absent = self._retrying(lambda: self._lacking(p.digest for p in batch),
                                "asking which content is missing")
        there = sum(p.size for p in batch if p.digest not in absent)
        if progress is not None and there:
            progress(there)
        todo = [p for p in batch if p.digest in absent]
        if todo:
            self._send_batch(todo, progress)

    def _put_documents(self, documents: list[tuple[str, bytes]]) -> None:
        """Manifests, last: each is stored only once its files are."""
        lacking = self.missing(d for d, _ in documents)
        for digest, data in documents:
            if digest in lacking:
                self._put(digest, partial(bytes, data), len(data))

    def _send_file(self, f: _Source, progress: Progress | None) -> None:
        """A whole file, streamed from disk (the server refuses it if it changed)."""
        reported = 0

        def body() -> Iterator[bytes]:
            nonlocal reported
            sent = 0
            with open(f.path, "rb") as src:
                while piece := src.read(_PIECE):
                    self.bytes_sent.add(len(piece))
                    sent += len(piece)
                    if progress is not None and sent > reported:  # a retry counts once
                        progress(sent - reported)
                        reported = sent
                    yield piece

        self._put(f.known(), body, f.size)

    def _send_batch(self, batch: list[_Piece], progress: Progress | None) -> None:
        """POST the pieces as one body of frames. The server verifies each, so the bytes
        are not hashed here again; after a dropped connection only the pieces it still
        lacks go again. A refused frame is explained by re-hashing the batch: a file that
        changed since it was cut is IntegrityError."""
        todo, tries, reported = batch, 0, set[str]()

        def send() -> httpx.Response | None:
            nonlocal todo, tries
            if tries:
                absent = self._lacking(p.digest for p in todo)
                todo = [p for p in todo if p.digest in absent]
            tries += 1
            if not todo:
                return None
            length = sum(len(p.header()) + p.size for p in todo)
            return self.http.post(f"{CONTENT}/batch", content=self._frames(
                todo, progress, reported), headers={
                    "content-length": str(length), "content-type": "application/octet-stream"})

        response = self._retrying(send, f"the upload of {len(batch)} objects")
        if response is None:
            return
        try:
            received = self._checked(response).json()["received"]
        except InvalidInput:
            for p in todo:
                with open(p.path, "rb", buffering=0) as src:
                    _check_unchanged(p.path, p.digest, hash_bytes(
                        os.pread(src.fileno(), p.size, p.offset)))
            raise
        if received != len(todo):
            raise StorageUnavailable(f"the server received {received} of {len(todo)} "
                                     "objects of a batch", hint="store it again")

    def _frames(self, pieces: list[_Piece], progress: Progress | None,
                reported: set[str]) -> Iterator[bytes]:
        """Each piece's header line and bytes, read from its file (opened once per run of
        pieces from it); ``reported`` keeps a retry from counting a piece twice."""
        path, fd = "", -1
        try:
            for p in pieces:
                if p.path != path:
                    if fd >= 0:
                        os.close(fd)
                    fd, path = os.open(p.path, os.O_RDONLY), p.path
                data = os.pread(fd, p.size, p.offset)
                if len(data) != p.size:
                    _check_unchanged(p.path, p.digest, hash_bytes(data))
                yield p.header()
                if data:
                    yield data
                self.bytes_sent.add(p.size)
                if progress is not None and p.digest not in reported:
                    reported.add(p.digest)
                    progress(p.size)
        finally:
            if fd >= 0:
                os.close(fd)

    def _send_list(self, f: _Source) -> None:
        """The chunk list, last: the server checks every chunk is there and that they hash
        to the file's digest before the file becomes visible."""
        data = ChunkList.of(f.known(), f.cuts or []).to_bytes()
        self._put(f.known(), partial(bytes, data), len(data), chunked=True)

    def _put(self, digest: str, body: Callable[[], bytes | Iterator[bytes]], size: int, *,
             chunked: bool = False) -> None:
        """PUT content by digest (idempotent, so retried); ``body()`` makes each attempt's."""
        url = f"{CONTENT}/{format_digest(parse_digest(digest))}"
        headers = {"content-length": str(size), "content-type": "application/octet-stream"}
        params = {"chunked": "1"} if chunked else None
        self._checked(self._retrying(lambda: self.http.put(
            url, content=body(), headers=headers, params=params), f"the upload of {digest}"))

    # -- downloading -----------------------------------------------------------------------

    def _download(self, digest: str, out: BinaryIO, progress: Progress | None,
                  limit: int | None = None) -> None:
        """Stream the content into ``out``, resuming with a range request after a dropped
        connection; IntegrityError unless what arrived hashes to ``digest``."""
        url = f"{CONTENT}/{format_digest(parse_digest(digest))}"
        hasher, got, total = new_hasher(), 0, -1

        def attempt() -> None:
            nonlocal hasher, got, total
            try:
                with self.http.stream("GET", url, headers={"range": f"bytes={got}-"} if got
                                      else {}) as response:
                    if response.is_error:
                        response.read()
                        self._checked(response)
                    if got and response.status_code != 206:  # the range was not honoured
                        out.seek(0)
                        out.truncate()
                        hasher, got = new_hasher(), 0
                    if total < 0:
                        total = int(response.headers.get("content-length", 0))
                        if limit is not None and total > limit:
                            raise InvalidInput(f"object {digest} is larger than {limit} "
                                               "bytes", digest=digest)
                    # the socket's pieces as they come (iter_bytes would copy them into
                    # larger ones, and decode a compressed body), hashed in this thread:
                    # BLAKE3's pool, woken per piece, costs more CPU than it saves here
                    pieces = response.iter_bytes(_PIECE) if response.headers.get(
                        "content-encoding") else response.iter_raw()
                    unreported = 0
                    try:
                        for piece in pieces:
                            hasher.update(piece)
                            out.write(piece)
                            got += len(piece)
                            unreported += len(piece)
                            if progress is not None and unreported >= _PIECE:
                                progress(unreported)
                                unreported = 0
                    finally:  # what arrived counts, even from an attempt cut short
                        if progress is not None and unreported:
                            progress(unreported)
            except _RETRYABLE:
                if got < total or total < 0:
                    raise  # else everything arrived; only the end of the exchange was lost

        self._retrying(attempt, f"the download of {digest}")
        actual = format_digest(hasher.hexdigest())
        if actual != digest:
            raise IntegrityError(f"the content the server sent for {digest} hashes to "
                                 f"{actual}", hint="run 'modelyard verify' on the server",
                                 digest=digest)

    # -- transport ---------------------------------------------------------------------

    def _server_limits(self) -> _Limits:
        """What the server says of itself (asked once)."""
        if self._limits is None:
            body = self._checked(self._retrying(
                lambda: self.http.get(f"{CONTENT}/policy"), "asking the chunk policy")).json()
            rules = body["chunking"]
            self._limits = _Limits(None if rules is None else ChunkPolicy(**rules),
                                   int(body["max_batch"]), int(body["max_frame"]))
        return self._limits

    def _retrying(self, send: Callable[[], T], what: str = "a request") -> T:
        """``send()``, again after a growing pause when the connection failed."""
        attempt = 0
        while True:
            try:
                return send()
            except _RETRYABLE as exc:
                if attempt == self.retries:
                    raise self._unreachable(exc, what) from exc
            except httpx.TransportError as exc:
                raise self._unreachable(exc, what) from exc
            time.sleep(self.backoff * 2 ** attempt)
            attempt += 1

    def _checked(self, response: httpx.Response) -> httpx.Response:
        if response.is_error:
            from modelyard.client.remote import error_from  # remote imports this module

            raise error_from(response)
        return response

    def _unreachable(self, exc: Exception, what: str = "a request") -> ModelyardError:
        return StorageUnavailable(
            f"{what} failed: no answer from the Modelyard server at {self.http.base_url} "
            f"({exc})", hint="check that the server is running and try again; an upload "
                             "resumes from what arrived")


def _batches(pieces: list[_Piece]) -> Iterator[list[_Piece]]:
    """Consecutive runs of ``pieces`` of about ``BATCH_BYTES`` each."""
    batch: list[_Piece] = []
    size = 0
    for p in pieces:
        if batch and size + p.size > BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(p)
        size += p.size
    if batch:
        yield batch


def _chunked(policy: ChunkPolicy | None, size: int) -> bool:
    return policy is not None and policy.applies(size)


@contextmanager
def _cancelled_on_failure(sends: list[Future[None]]) -> Iterator[None]:
    """Sends not started yet are cancelled when the body fails or is interrupted, so a
    failed upload stops instead of sending the rest."""
    try:
        yield
    except BaseException:
        for send in sends:
            send.cancel()
        raise


def _raise_failed(sends: list[Future[None]]) -> None:
    """Raise the error of the first finished send that failed (so a cut stops early)."""
    for send in sends:
        if send.done():
            send.result()


def _check_unchanged(path: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise IntegrityError(f"{path} changed while being stored (it hashed to {expected}, "
                             f"now to {actual})", hint="store it again", path=path)
