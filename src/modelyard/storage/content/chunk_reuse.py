"""Fetching a chunked file into a whole-file store by downloading only the chunks it lacks.

A workspace cache keeps files whole (they are linked into working trees), so it holds no
chunk objects. It keeps, beside its objects, the chunk list of every file that came from
or went to a chunked remote (``<cache>/lists/<hex>``, a copy of the remote's document).
Fetching a new version of such a file then asks the remote for its list, copies every
chunk an earlier version already has from that version's cache object (read at its
offset and re-hashed), and downloads only the rest, in order, a few chunks ahead
(``ChunkedReader``). The whole-file digest, computed as the file is written, is checked
before the file is renamed into the cache, so a wrong list, a damaged local copy or a
damaged chunk can never put a wrong object there; a local chunk that no longer matches
is downloaded instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress

from modelyard.errors import IntegrityError, InvalidInput
from modelyard.storage.content import chunk_lists
from modelyard.storage.content.chunk_lists import ChunkList
from modelyard.storage.content.chunked import ChunkedReader, SentBytes, list_at, load_chunk
from modelyard.storage.content.hashing import Progress, copy_and_hash, hash_bytes, parse_digest
from modelyard.storage.content.objects import ObjectStore, _make_temp, _unlink_quietly


class LocalLists:
    """The chunk lists of a whole-file local store's objects (``<root>/lists``)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.root = os.path.join(store.root, "lists")
        self._lock = threading.Lock()
        self._index: dict[str, tuple[str, int]] | None = None  # chunk → (object, offset)

    def _path(self, digest: str) -> str:
        return os.path.join(self.root, parse_digest(digest))

    def record(self, listed: ChunkList) -> None:
        """Keep ``listed`` (atomically: temp + rename; a lost one only costs a download)."""
        os.makedirs(self.root, exist_ok=True)
        fd, tmp = _make_temp(self.root, 0o444)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(listed.to_bytes())
            os.replace(tmp, self._path(listed.digest))
        except BaseException:
            _unlink_quietly(tmp)
            raise
        with self._lock:
            if self._index is not None:
                self._add(listed)

    def forget(self, digests: Iterable[str]) -> None:
        for digest in digests:
            with suppress(FileNotFoundError):
                os.unlink(self._path(digest))

    def sources(self, wanted: set[str]) -> dict[str, tuple[str, int]]:
        """Where the cache already has each chunk of ``wanted``: (object path, offset).
        The lists are read once per ``LocalLists`` (one transfer), whatever its files."""
        with self._lock:
            if self._index is None:
                self._index = {}
                for listed in self._read_all():
                    self._add(listed)
            return {c: self._index[c] for c in wanted if c in self._index}

    def _add(self, listed: ChunkList) -> None:
        assert self._index is not None
        path = self.store.local_path(listed.digest)
        for offset, chunk, _ in listed.ranges():
            self._index.setdefault(chunk, (path, offset))

    def _read_all(self) -> Iterator[ChunkList]:
        """The lists whose object is present at its full size."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return
        for name in names:
            digest = f"blake3:{name}"
            try:
                with open(os.path.join(self.root, name), "rb") as f:
                    listed = chunk_lists.parse(f.read(chunk_lists.MAX_DOCUMENT), digest)
                if listed is not None and os.stat(
                        self.store.local_path(digest)).st_size == listed.size:
                    yield listed
            except (OSError, ValueError, InvalidInput):  # a stray name, an object gc removed
                continue


def fetch_file(src: ObjectStore, lists: LocalLists, digest: str,
               progress: Progress | None = None, received: SentBytes | None = None) -> None:
    """Write ``src``'s object ``digest`` into ``lists.store`` (renamed over a damaged copy),
    reusing the chunks the store already has when ``src`` holds it as a chunk list."""
    dst = lists.store
    target = dst.local_path(digest)
    listed = list_at(src, digest)
    if listed is None:  # an ordinary object: one verified download
        src.get_file(digest, target, progress=progress)
        if received is not None:
            received.add(os.path.getsize(target))
        os.chmod(target, 0o444)
        return
    local = lists.sources(set(listed.sizes()))

    def load(chunk: str, n: int) -> bytes:
        data = _local_chunk(local.get(chunk), chunk, n)
        if data is None:
            data = load_chunk(src, digest, chunk, n)
            if received is not None:
                received.add(n)
        return data

    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, tmp = _make_temp(os.path.dirname(target), 0o444)
    try:
        with ChunkedReader(src, listed, load) as chunks, os.fdopen(fd, "wb") as out:
            actual, _ = copy_and_hash(chunks, out, progress, listed.size)
        if actual != digest:
            raise IntegrityError(
                f"object {digest} on {src.url} is damaged: its chunks assemble into {actual}",
                hint="restore it from another copy, or push the original again",
                digest=digest)
        os.replace(tmp, target)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    lists.record(listed)


def _local_chunk(where: tuple[str, int] | None, chunk: str, n: int) -> bytes | None:
    """The chunk's bytes from a cache object, or None if it is absent or no longer matches."""
    if where is None:
        return None
    path, offset = where
    try:
        with open(path, "rb", buffering=0) as f:
            data = os.pread(f.fileno(), n, offset)
    except OSError:
        return None
    return data if len(data) == n and hash_bytes(data) == chunk else None
