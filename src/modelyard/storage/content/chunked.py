"""Storing and reading chunked files: the chunk-aware half of ``ObjectStore``.

A file of ``ChunkPolicy.threshold`` bytes or more goes in as its content-defined chunks
(each an ordinary object, stored once) plus a chunk list at the file's own digest (see
``chunk_lists``). A local store is written in one read of the file: each chunk is hashed
and, if missing, written as it is cut, while the whole-file digest is computed from the
same bytes (``_cut_and_store_local``). A remote store gets two passes: the first cuts and
hashes, the store is then asked in one batch which chunks it lacks, and the second sends
only those, each re-read and re-hashed. Either way a file changed meanwhile stores no
list. The list goes last: a store that has it has every chunk, and a push that
was interrupted resumes by sending only the chunks still missing. Reading streams chunk
by chunk under the usual whole-file check; a stream whose bytes are used as they arrive
(the server's responses, ``open_verified``) also verifies each chunk before returning any
of it, while a download into a temporary file relies on the whole-file hash alone and
names the damaged chunk only when that hash fails.
"""

from __future__ import annotations

import io
import os
import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.storage.content import chunk_lists
from modelyard.storage.content.chunk_lists import MAGIC, MAX_DOCUMENT, ChunkList
from modelyard.storage.content.chunking import ChunkPolicy, Cut, cut_chunks, cut_stream
from modelyard.storage.content.hashing import (
    Pieces,
    Progress,
    format_digest,
    hash_bytes,
    known_size,
    new_hasher,
)
from modelyard.storage.content.object_seal import seal
from modelyard.storage.parallel import run_parallel

if TYPE_CHECKING:
    from modelyard.storage.content.objects import ObjectStore

_UPLOAD_JOBS = 8  # chunks in flight: at most 8 * max_size bytes of memory
_IN_FLIGHT = 16  # local writes: chunks cut but not yet hashed and written
_HASH_WORKERS = 2
_SYNC_SLOTS = 8  # local writes: temp files written and awaiting their fsync
_IOV_PIECES = 512  # pieces per writev (the kernel takes at most 1024)
_PREFETCH = 4  # reads: chunks loaded and verified ahead of the one being consumed
_READ_BUDGET = threading.BoundedSemaphore(32)
"""Chunks loaded ahead by all readers of this process together (≤ 128 MiB at the 4 MiB
chunk maximum), so a fetch of many large files at once stays bounded in memory."""


class SentBytes:
    """Bytes of chunks actually written to a store (what a push paid for)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.total += n


def write_chunked(store: ObjectStore, source: str, digest: str | None, policy: ChunkPolicy,
                  progress: Progress | None, rehash: bool = False) -> str:
    """Store ``source`` as chunks plus a chunk list and return its digest; a ``digest``
    given by the caller must match the bytes that were cut (IntegrityError otherwise)."""
    with open(source, "rb", buffering=0) as f:
        if store.is_local:
            actual, listed = _cut_and_store_local(store, f, policy, progress, rehash)
            store._check_source(source, digest or actual, actual)
        else:
            actual, listed = _cut_then_send(store, f, source, policy, progress)
            store._check_source(source, digest or actual, actual)
    if not store.intact_many({actual: listed.size}):  # the list goes last
        store.put_bytes(listed.to_bytes(), digest=actual)
    return actual


def _cut_then_send(store: ObjectStore, f: Any, source: str, policy: ChunkPolicy,
                   progress: Progress | None) -> tuple[str, ChunkList]:
    """Remote stores: cut and hash, ask which chunks the store lacks in one batch (a
    listing per prefix), then send those, each re-read and re-hashed."""
    size = os.fstat(f.fileno()).st_size
    whole = new_hasher(size)
    cuts = list(cut_stream(f, policy, whole))
    actual = format_digest(whole.hexdigest())
    listed = ChunkList.of(actual, cuts)
    have = store.intact_many(listed.sizes())
    todo: dict[str, tuple[int, int]] = {}
    for offset, chunk, n in listed.ranges():
        if chunk not in have:
            todo.setdefault(chunk, (offset, n))
    if progress is not None:
        progress(size - sum(n for _, n in todo.values()))

    def send(chunk: str) -> None:
        offset, n = todo[chunk]
        data = os.pread(f.fileno(), n, offset)
        store._check_source(source, chunk, hash_bytes(data))
        store.put_bytes(data, digest=chunk)
        store.chunk_bytes_sent.add(n)
        if progress is not None:
            progress(n)

    run_parallel(send, sorted(todo), _UPLOAD_JOBS)
    return actual, listed


def _cut_and_store_local(store: ObjectStore, f: Any, policy: ChunkPolicy,
                         progress: Progress | None, rehash: bool) -> tuple[str, ChunkList]:
    """Local stores, in one read of the file: the cutter (this thread) hands each chunk's
    bytes to a worker that hashes it and writes it if the store lacks it, and to an
    in-order thread that feeds the whole-file hasher; fsync and rename run in the
    ``ChunkWriter``'s pool. BLAKE3, writes and fsync release the GIL, so the stages
    overlap; at most ``_IN_FLIGHT`` chunks are in memory. A chunk is stored under the
    digest of the very bytes written, so it is valid even if the file changes meanwhile:
    only the list (which the caller writes after checking the whole digest) depends on
    the file as a whole."""
    # The whole-file hasher gets one chunk at a time: BLAKE3's thread pool, woken for each,
    # spun (36,000 sched_yield calls per GiB) on cores the chunk hashers need.
    whole = new_hasher()
    seen: set[str] = set()
    lock = threading.Lock()

    def stage(data: bytes) -> str:
        chunk = hash_bytes(data)
        with lock:
            first = chunk not in seen
            seen.add(chunk)
        if first and not store.intact_many({chunk: len(data)}, workers=1, rehash=rehash):
            writer.write(chunk, (data,))
            store.chunk_bytes_sent.add(len(data))
        if progress is not None:
            progress(len(data))
        return chunk

    cuts: list[Cut] = []
    window: deque[tuple[int, int, Future[object], Future[str]]] = deque()

    def collect() -> None:
        offset, n, hashed, staged = window.popleft()
        hashed.result()
        cuts.append(Cut(offset, n, staged.result()))

    with ChunkWriter(store) as writer, ThreadPoolExecutor(
            _HASH_WORKERS) as hashers, ThreadPoolExecutor(1) as in_order:
        try:
            for piece in cut_chunks(f, policy):
                data = bytes(piece.data)  # the cutter reuses its buffer
                window.append((piece.offset, len(data), in_order.submit(whole.update, data),
                               hashers.submit(stage, data)))
                if len(window) > _IN_FLIGHT:
                    collect()
            while window:
                collect()
        except BaseException:
            for _, _, hashed, staged in window:
                hashed.cancel()
                staged.cancel()
            raise
    actual = format_digest(whole.hexdigest())
    return actual, ChunkList.of(actual, cuts)


class ChunkWriter:
    """Writes verified objects into a local store, many at a time, durably: each is
    written to a temporary file at once, then fsynced, sealed and renamed into place in a
    pool (at most ``_SYNC_SLOTS`` waiting, so the fsyncs overlap the next writes instead
    of following each one), and the folders they went into are fsynced once, when the
    writer closes, not once per object. An object appears only complete and fsynced; one
    renamed before a crash cut the batch short is whole, so a resumed upload skips it.
    A failed write is raised by a later ``write`` or, at the latest, by closing, which
    waits for every write."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._slots = threading.BoundedSemaphore(_SYNC_SLOTS)  # temp files awaiting fsync
        self._pool = ThreadPoolExecutor(_SYNC_SLOTS)
        self._pending: deque[Future[None]] = deque()

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._pool.shutdown(wait=True)
        try:
            if kind is None:
                for pending in self._pending:
                    pending.result()
        finally:  # what did land is whole: keep its names too, even when failing
            self._store._unsynced.flush()

    def write(self, digest: str, pieces: Pieces) -> None:
        """Write ``pieces``, whose bytes the caller has verified hash to ``digest``; it is
        in place, its folder fsynced, once the writer has closed."""
        target = self._store._path(digest)
        self._slots.acquire()
        try:
            fd, tmp = self._store._local_temp(target)
        except BaseException:
            self._slots.release()
            raise
        try:
            _write_all(fd, pieces)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            self._slots.release()
            raise
        self._pending.append(self._pool.submit(self._finish, fd, tmp, target, digest))
        while self._pending and self._pending[0].done():  # a failed write ends it at once
            self._pending.popleft().result()

    def _finish(self, fd: int, tmp: str, target: str, digest: str) -> None:
        try:
            os.fsync(fd)
            os.close(fd)
            fd = -1
            seal(tmp, digest)
            os.replace(tmp, target)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        finally:
            self._slots.release()
        self._store._unsynced.add(os.path.dirname(target))


def _write_all(fd: int, pieces: Pieces) -> None:
    """Write the pieces in order, a few hundred per system call (``writev``)."""
    views = [memoryview(piece) for piece in pieces if len(piece)]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first:first + _IOV_PIECES])
        while written and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]


def list_at(store: ObjectStore, digest: str, stored_size: int | None = None) -> ChunkList | None:
    """The chunk list stored at ``digest``, or None (absent, or an ordinary object)."""
    if stored_size is not None and not len(MAGIC) <= stored_size <= MAX_DOCUMENT:
        return None
    try:
        with store._open_plain(digest) as raw:
            size = known_size(raw) if stored_size is None else stored_size
            if size is None or not len(MAGIC) <= size <= MAX_DOCUMENT:
                return None
            if raw.read(len(MAGIC)) != MAGIC:
                return None
            return chunk_lists.parse(MAGIC + raw.read(), digest)
    except NotFound:
        return None


def lists_among(store: ObjectStore, sizes: Mapping[str, int | None]) -> dict[str, ChunkList]:
    """The chunk lists among ``sizes`` (digest → the file's size, None if unknown). Only an
    object whose stored size differs from its file's size is read, so ordinary objects
    cost no request beyond the batched size query."""
    stored = store.stored_sizes(sizes)
    suspects = [d for d, n in stored.items() if sizes[d] is None or n != sizes[d]]
    found = run_parallel(lambda d: list_at(store, d, stored[d]), suspects, None)
    return {d: cl for d, cl in zip(suspects, found, strict=True) if cl is not None}


def open_raw(store: ObjectStore, digest: str, raw: io.BufferedIOBase,
             check_chunks: bool = True) -> io.BufferedIOBase:
    """``raw`` itself, or a stream of the chunks when ``raw`` holds a chunk list.

    ``check_chunks=False`` is for a caller that hashes the whole file before any of it is
    seen (a download into a temporary file, ``verify``): each chunk is then read without
    its own hash, which halves the hashing of a verified download, and a whole-file
    mismatch is explained chunk by chunk by ``explain_mismatch``.
    """
    size = known_size(raw)
    if size is None or not len(MAGIC) <= size <= MAX_DOCUMENT:
        return raw
    try:  # a local file: peek without moving its offset (copy_file_range reads from it)
        head = os.pread(raw.fileno(), len(MAGIC), 0)
    except (OSError, io.UnsupportedOperation):
        head = raw.read(len(MAGIC))
        raw.seek(0)
    if head != MAGIC:
        return raw
    raw.seek(0)
    data = raw.read()
    listed = chunk_lists.parse(data, digest)
    if listed is None:
        raw.seek(0)
        return raw
    raw.close()
    if check_chunks:
        return ChunkedReader(store, listed)  # type: ignore[return-value]
    return unchecked_reader(store, listed)  # type: ignore[return-value]


def unchecked_reader(store: ObjectStore, listed: ChunkList) -> ChunkedReader:
    """The chunks of ``listed`` read as stored, not hashed one by one: for a caller that
    hashes the whole file and acts on none of it before that hash matched (a missing
    chunk or one of the wrong size is still IntegrityError naming the file)."""
    return ChunkedReader(store, listed, lambda chunk, n: _read_chunk(store, listed.digest,
                                                                      chunk, n))


def explain_mismatch(store: ObjectStore, raw: object) -> None:
    """After a chunked file read unchecked failed its whole-file hash: raise the
    IntegrityError of the first damaged chunk, if one is (else the list itself is wrong,
    which the caller reports)."""
    if isinstance(raw, ChunkedReader):
        listed = raw.listed
        for chunk, n in listed.chunks:
            load_chunk(store, listed.digest, chunk, n)


def is_chunked(raw: object) -> bool:
    return isinstance(raw, ChunkedReader)


def chunks_of(raw: object) -> list[tuple[str, int]]:
    """The (chunk digest, size) list behind a stream ``open_raw`` returned as chunked."""
    assert isinstance(raw, ChunkedReader)
    return list(raw.listed.chunks)


def list_intact(store: ObjectStore, digest: str, size: int, stored_size: int) -> bool:
    """Whether ``digest`` is stored as a chunk list for ``size`` bytes whose chunks are all
    present and trusted (``intact_many``)."""
    listed = list_at(store, digest, stored_size)
    if listed is None or listed.size != size:
        return False
    sizes = listed.sizes()
    return len(store.intact_many(sizes)) == len(sizes)


class ChunkedReader(io.RawIOBase):
    """The bytes of a chunked file; with the default ``load``, each chunk is verified
    before any of it is returned.

    A missing or damaged chunk raises IntegrityError naming the file and the chunk. The
    next ``_PREFETCH`` chunks are read and hashed in worker threads while the caller
    consumes (and whole-file hashes) the current one, so a verified download costs about
    one hash pass of wall time, not two. Memory: ``_PREFETCH`` + 1 chunks per reader, and
    at most ``_READ_BUDGET`` chunks across all readers: a reader with nothing ahead waits for
    a slot, one that already has a chunk ahead just reads ahead less.
    """

    def __init__(self, store: ObjectStore, listed: ChunkList,
                 load: Callable[[str, int], bytes] | None = None) -> None:
        """``load(chunk, size)``: where verified chunk bytes come from (default: ``store``)."""
        super().__init__()
        self._load = load or (lambda chunk, n: load_chunk(store, listed.digest, chunk, n))
        self.listed = listed
        self._next = 0
        self._buffer = memoryview(b"")
        self._ahead: deque[Future[bytes]] = deque()
        self._held = 0  # slots of _READ_BUDGET taken for chunks ahead and the current one
        self._pool: ThreadPoolExecutor | None = None
        self.size = listed.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._buffer:
            if self._held > len(self._ahead):  # the chunk just consumed gives its slot back
                self._release(1)
            self._fill_ahead()
            if not self._ahead:
                return 0
            self._buffer = memoryview(self._ahead.popleft().result())
        k = min(len(view), len(self._buffer))
        view[:k] = self._buffer[:k]
        self._buffer = self._buffer[k:]
        return k

    def _fill_ahead(self) -> None:
        while len(self._ahead) <= _PREFETCH and self._next < len(self.listed.chunks):
            if not _READ_BUDGET.acquire(blocking=not self._ahead):
                return  # others hold the budget; read ahead again once this chunk is used
            self._held += 1
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_HASH_WORKERS)
            chunk, n = self.listed.chunks[self._next]
            self._next += 1
            self._ahead.append(self._pool.submit(self._load, chunk, n))

    def close(self) -> None:
        if self._pool is not None:
            for future in self._ahead:
                future.cancel()
            self._pool.shutdown(wait=True)
            self._pool = None
        self._ahead.clear()
        self._release(self._held)
        super().close()

    def _release(self, count: int) -> None:
        for _ in range(count):
            _READ_BUDGET.release()
        self._held -= count


def _read_chunk(store: ObjectStore, whole: str, chunk: str, n: int) -> bytes:
    """A chunk of the file ``whole`` as stored, not hashed (the caller hashes the whole
    file); missing or of the wrong size, it is IntegrityError naming the file."""
    try:
        data = store.get_bytes(chunk, max_size=n, verified=False)
    except (NotFound, InvalidInput):
        return load_chunk(store, whole, chunk, n)  # raises the precise error
    if len(data) != n:
        return load_chunk(store, whole, chunk, n)
    return data


def load_chunk(store: ObjectStore, whole: str, chunk: str, n: int) -> bytes:
    """A chunk of the file ``whole``, verified: missing, damaged or of the wrong size, it is
    IntegrityError naming the file."""
    hint = "restore it from another copy, or store the original again"
    try:
        data = store.get_bytes(chunk, max_size=n)
    except NotFound:
        raise IntegrityError(f"object {whole} in {store.url} is damaged: its chunk {chunk}"
                             " is missing", hint=hint, digest=whole) from None
    except (IntegrityError, InvalidInput) as exc:
        raise IntegrityError(f"object {whole} in {store.url} is damaged: its chunk {chunk}"
                             " no longer matches its digest", hint=hint, digest=whole) from exc
    if len(data) != n:
        raise IntegrityError(f"object {whole} in {store.url} is damaged: its chunk {chunk} "
                             f"has {len(data)} bytes, the list says {n}", hint=hint,
                             digest=whole)
    return data




def chunks_in_use(store: ObjectStore, kept: set[str]) -> set[str]:
    """Every chunk a chunk list among ``kept`` needs: gc must keep them all."""
    if store.chunking is None:  # such a store (a workspace cache) never makes chunk lists
        return set()
    lists = lists_among(store, dict.fromkeys(kept))
    return {chunk for listed in lists.values() for chunk, _ in listed.chunks}
