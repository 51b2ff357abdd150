"""Storing and reading chunked files: the chunk-aware half of ``ObjectStore``.

A file of ``ChunkPolicy.threshold`` bytes or more goes in as its content-defined chunks
(each an ordinary object, stored once) plus a chunk list at the file's own digest (see
``chunk_lists``). Writing makes two passes: the first cuts and hashes (the whole-file
digest from the same bytes), the store is then asked in one batch which chunks it lacks,
and the second sends only those, each re-read and re-hashed, so a file changed meanwhile
stores no list. The list goes last: a store that has it has every chunk, and a push that
was interrupted resumes by sending only the chunks still missing. Reading streams chunk
by chunk, each verified against its digest, under the usual whole-file check.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.errors import IntegrityError, NotFound
from modelyard.storage.content import chunk_lists
from modelyard.storage.content.chunk_lists import MAGIC, MAX_DOCUMENT, ChunkList
from modelyard.storage.content.chunking import ChunkPolicy, cut_stream
from modelyard.storage.content.hashing import Progress, format_digest, hash_bytes, new_hasher
from modelyard.storage.parallel import run_parallel

if TYPE_CHECKING:
    from modelyard.storage.content.objects import ObjectStore

_UPLOAD_JOBS = 8  # chunks in flight: at most 8 * max_size bytes of memory


class SentBytes:
    """Bytes of chunks actually written to a store (what a push paid for)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.total += n


def write_chunked(store: ObjectStore, source: str, digest: str, policy: ChunkPolicy,
                  progress: Progress | None) -> None:
    """Store ``source`` (whose digest must be ``digest``) as chunks plus a chunk list."""
    with open(source, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        whole = new_hasher(size)
        cuts = list(cut_stream(f, policy, whole))
        store._check_source(source, digest, format_digest(whole.hexdigest()))
        listed = ChunkList.of(digest, cuts)
        sizes = listed.sizes()
        have = store.intact_many(sizes)
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
    store.put_bytes(listed.to_bytes(), digest=digest)


def list_at(store: ObjectStore, digest: str, stored_size: int | None = None) -> ChunkList | None:
    """The chunk list stored at ``digest``, or None (absent, or an ordinary object)."""
    if stored_size is not None and not len(MAGIC) <= stored_size <= MAX_DOCUMENT:
        return None
    try:
        with store._open_plain(digest) as raw:
            size = _size_of(raw) if stored_size is None else stored_size
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


def open_raw(store: ObjectStore, digest: str, raw: io.BufferedIOBase) -> io.BufferedIOBase:
    """``raw`` itself, or a stream of the chunks when ``raw`` holds a chunk list."""
    size = _size_of(raw)
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
    return ChunkedReader(store, listed)  # type: ignore[return-value]


def is_chunked(raw: object) -> bool:
    return isinstance(raw, ChunkedReader)


def list_intact(store: ObjectStore, digest: str, size: int, stored_size: int) -> bool:
    """Whether ``digest`` is stored as a chunk list for ``size`` bytes whose chunks are all
    present and trusted (``intact_many``)."""
    listed = list_at(store, digest, stored_size)
    if listed is None or listed.size != size:
        return False
    sizes = listed.sizes()
    return len(store.intact_many(sizes)) == len(sizes)


class ChunkedReader(io.RawIOBase):
    """The bytes of a chunked file, each chunk verified before any of it is returned.

    A missing or damaged chunk raises IntegrityError naming the file and the chunk.
    Memory: one chunk at a time.
    """

    def __init__(self, store: ObjectStore, listed: ChunkList) -> None:
        super().__init__()
        self._store = store
        self._list = listed
        self._next = 0
        self._buffer = memoryview(b"")
        self.size = listed.size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._buffer:
            if self._next == len(self._list.chunks):
                return 0
            chunk, n = self._list.chunks[self._next]
            self._next += 1
            self._buffer = memoryview(self._load(chunk, n))
        k = min(len(view), len(self._buffer))
        view[:k] = self._buffer[:k]
        self._buffer = self._buffer[k:]
        return k

    def _load(self, chunk: str, n: int) -> bytes:
        try:
            data = self._store.get_bytes(chunk, max_size=n)
        except NotFound:
            raise IntegrityError(
                f"object {self._list.digest} is damaged: its chunk {chunk} is missing",
                hint="restore it from another copy, or store the original again",
                digest=self._list.digest) from None
        except IntegrityError as exc:
            raise IntegrityError(
                f"object {self._list.digest} is damaged: its chunk {chunk} no longer"
                " matches its digest",
                hint="restore it from another copy, or store the original again",
                digest=self._list.digest) from exc
        if len(data) != n:
            raise IntegrityError(f"object {self._list.digest} is damaged: its chunk {chunk} "
                                 f"has {len(data)} bytes, the list says {n}",
                                 digest=self._list.digest)
        return data


def _size_of(raw: io.BufferedIOBase) -> int | None:
    size = getattr(raw, "size", None)
    if isinstance(size, int):
        return size
    try:
        return os.fstat(raw.fileno()).st_size
    except (OSError, io.UnsupportedOperation):
        return None


def chunks_in_use(store: ObjectStore, kept: set[str]) -> set[str]:
    """Every chunk a chunk list among ``kept`` needs: gc must keep them all."""
    if store.chunking is None:  # such a store (a workspace cache) never makes chunk lists
        return set()
    lists = lists_among(store, dict.fromkeys(kept))
    return {chunk for listed in lists.values() for chunk, _ in listed.chunks}
