"""The remote content plane: the caller's files hashed here, moved to a server by digest.

``HttpContent`` is the ``ContentStore`` a remote client hands to ``Files``. It hashes a
tree exactly as the embedded store does (the same manifest; large files cut with the
server store's own chunk policy, which it asks for once), so a digest is the same on both
faces. It then asks the server which digests it lacks and sends only those: whole files
streamed from disk, large files as their missing chunks and then their chunk list, a
directory's manifest last. Re-sending known content therefore moves no file bytes, and an
upload cut off by a dropped connection or a server restart resumes from the chunks that
arrived. Downloads stream into a temporary file, are verified against their digest and
renamed into place (``tree_checkout`` does the tree around them). Connection failures of
GETs and of content PUTs (idempotent by digest) are retried with backoff; an interrupted
download resumes with a range request.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, TypeVar

import httpx

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
JOBS = 4  # files hashed, downloads in flight: enough to fill a link, few enough for a server
_PIECE = 1024 * 1024  # bytes per read from disk or from a response
_RETRYABLE = (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError)
T = TypeVar("T")


@dataclass
class _Source:
    """One local file to store: its digest and, for a chunked file, its cuts once made."""

    path: str
    size: int
    digest: str
    cuts: list[Cut] | None = None


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
        self._limits: tuple[ChunkPolicy | None, int] | None = None

    # -- the ContentStore protocol -------------------------------------------------------

    def put_tree(self, path: str | os.PathLike[str], progress: Progress | None = None, *,
                 cache: StateCache | None = None) -> StoredTree:
        source = os.fspath(path)
        if not os.path.exists(source):
            raise InvalidInput(f"path not found: {source}", path=source)
        if not os.path.isdir(source):
            (single,) = self._hash([(source, os.path.getsize(source))], cache)
            self._store([single], [], progress)
            return StoredTree(single.digest, "file", single.size, 1, None)
        files = scan_directory(source)
        hashed = self._hash([(f.abspath, f.size) for f in files], cache)
        manifest = Manifest(Entry(f.path, h.digest, f.size, f.mode)
                            for f, h in zip(files, hashed, strict=True))
        data = manifest.to_bytes()
        self._store(hashed, [(manifest.digest, data)], progress)
        return StoredTree(manifest.digest, "dir", manifest.total_size, manifest.file_count,
                          manifest)

    def put_cached(self, cache: ObjectStore, objects: Objects,
                   progress: Progress | None = None) -> None:
        files = [_Source(cache.local_path(d), size, d) for d, size in objects.files.items()]
        self._store(files, [(d, cache.get_bytes(d)) for d in objects.manifests], progress)

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
        wanted = list(dict.fromkeys(digests))
        _, batch = self._server_limits()
        lacking: set[str] = set()
        for i in range(0, len(wanted), batch):
            try:
                response = self.http.post(f"{CONTENT}/missing",
                                          json={"digests": wanted[i:i + batch]})
            except httpx.TransportError as exc:
                raise self._unreachable(exc, "asking which content is missing") from exc
            lacking.update(self._checked(response).json()["missing"])
        return lacking

    def _hash(self, files: Sequence[tuple[str, int]], cache: StateCache | None
              ) -> list[_Source]:
        """Each file's digest. Without a state cache a large file is cut at once: that
        one read gives both its digest and its chunks (hashing first would read it twice)."""
        policy, _ = self._server_limits()
        cut_now = sorted(p for p, n in files if cache is None and _chunked(policy, n))
        cuts: dict[str, tuple[str, list[Cut]]] = {}
        if policy is not None and cut_now:
            rules = policy
            cuts = dict(zip(cut_now, run_parallel(lambda p: _cut(p, rules), cut_now,
                                                  self.jobs), strict=True))
        hashed = hash_paths_cached([p for p, _ in files if p not in cuts], cache, self.jobs)
        return [_Source(p, n, *cuts[p]) if p in cuts else _Source(p, n, hashed[p])
                for p, n in files]

    def _store(self, files: list[_Source], documents: list[tuple[str, bytes]],
               progress: Progress | None) -> None:
        """Send what the server lacks: whole files and chunks, then chunk lists, then the
        ``documents`` (manifests), so a manifest is there only once its files are."""
        first: dict[str, _Source] = {}
        for f in files:
            first.setdefault(f.digest, f)
        lacking = self.missing([*first, *(d for d, _ in documents)])
        policy, _ = self._server_limits()
        whole = [f for d, f in first.items() if d in lacking and not _chunked(policy, f.size)]
        large = [f for d, f in first.items() if d in lacking and _chunked(policy, f.size)]
        if policy is not None and large:
            rules = policy
            run_parallel(lambda f: self._cut_again(f, rules),
                         [f for f in large if f.cuts is None], self.jobs)
        chunks: dict[str, tuple[_Source, Cut]] = {}
        for f in large:
            for cut in f.cuts or ():
                chunks.setdefault(cut.digest, (f, cut))
        to_send = sorted(self.missing(chunks)) if chunks else []
        if progress is not None:  # what is already there counts at once
            progress(sum(f.size for f in files) - sum(f.size for f in whole)
                     - sum(chunks[c][1].size for c in to_send))
        sends: list[Callable[[], None]] = [
            *(partial(self._send_file, f, progress) for f in whole),
            *(partial(self._send_chunk, *chunks[c], progress) for c in to_send)]
        # twice as many uploads in flight: the server fsyncs each object before it answers,
        # and 8 hide that wait (1 GiB in 24 s against 25-37 s with 4, on a busy VM)
        run_parallel(lambda send: send(), sends, 2 * self.jobs)
        run_parallel(self._send_list, large, self.jobs)
        for digest, data in documents:
            if digest in lacking:
                self._put(digest, partial(bytes, data), len(data))

    def _cut_again(self, f: _Source, policy: ChunkPolicy) -> None:
        """Cut a file whose digest came from the state cache; it must not have changed."""
        digest, f.cuts = _cut(f.path, policy)
        _check_unchanged(f.path, f.digest, digest)

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

        self._put(f.digest, body, f.size)

    def _send_chunk(self, f: _Source, cut: Cut, progress: Progress | None) -> None:
        with open(f.path, "rb", buffering=0) as src:
            data = os.pread(src.fileno(), cut.size, cut.offset)
        _check_unchanged(f.path, cut.digest, hash_bytes(data))

        def body() -> bytes:
            self.bytes_sent.add(len(data))
            return data

        self._put(cut.digest, body, cut.size)
        if progress is not None:
            progress(cut.size)

    def _send_list(self, f: _Source) -> None:
        """The chunk list, last: the server checks every chunk is there and that they hash
        to the file's digest before the file becomes visible."""
        data = ChunkList.of(f.digest, f.cuts or []).to_bytes()
        self._put(f.digest, partial(bytes, data), len(data), chunked=True)

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
                        hasher = new_hasher(total)
                    for piece in response.iter_bytes(_PIECE):
                        hasher.update(piece)
                        out.write(piece)
                        got += len(piece)
                        if progress is not None:
                            progress(len(piece))
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

    def _server_limits(self) -> tuple[ChunkPolicy | None, int]:
        """The server store's chunk policy and the batch cap of ``missing`` (asked once)."""
        if self._limits is None:
            body = self._checked(self._retrying(
                lambda: self.http.get(f"{CONTENT}/policy"), "asking the chunk policy")).json()
            rules = body["chunking"]
            self._limits = (None if rules is None else ChunkPolicy(**rules),
                            int(body["max_batch"]))
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


def _chunked(policy: ChunkPolicy | None, size: int) -> bool:
    return policy is not None and policy.applies(size)


def _cut(path: str, policy: ChunkPolicy) -> tuple[str, list[Cut]]:
    """A file's digest and its chunks, from one read."""
    with open(path, "rb", buffering=0) as f:
        whole = new_hasher(os.fstat(f.fileno()).st_size)
        cuts = list(cut_stream(f, policy, whole))
    return format_digest(whole.hexdigest()), cuts


def _check_unchanged(path: str, expected: str, actual: str) -> None:
    if actual != expected:
        raise IntegrityError(f"{path} changed while being stored (it hashed to {expected}, "
                             f"now to {actual})", hint="store it again", path=path)
