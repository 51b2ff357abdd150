"""The content-addressed object store: ``<root>/<2 hex>/<62 hex>`` on any fsspec filesystem.

Guarantees, local or remote:
- an object is only ever visible complete and under the digest of its bytes: content
  is hashed while it is copied into the store and committed (rename, S3 PUT or
  completed multipart upload) only if it matches;
- an object that exists is never rewritten;
- reads re-hash while streaming; a mismatch raises IntegrityError and leaves nothing
  partial at the destination.
Local folders use plain ``os`` calls; every other URL goes through fsspec.
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import fsspec
from fsspec.implementations.local import LocalFileSystem

from modelyard.errors import IntegrityError, InvalidInput, NotFound, StorageUnavailable
from modelyard.storage.content import chunked, chunking
from modelyard.storage.content import chunked as chunked_store
from modelyard.storage.content.backends import missing_driver_hint
from modelyard.storage.content.durability import PendingDirs
from modelyard.storage.content.hashing import (
    CHUNK_SIZE,
    DIGEST_PREFIX,
    SMALL_FILE,
    Pieces,
    Progress,
    Readable,
    copy_and_hash,
    format_digest,
    hash_bytes,
    hash_file,
    hash_pieces,
    hash_stream,
    is_digest,
    known_size,
    new_hasher,
    parse_digest,
)
from modelyard.storage.content.manifest import (
    Entry,
    Ignore,
    Manifest,
    ScannedFile,
    scan_directory,
)
from modelyard.storage.content.object_seal import is_sealed, refresh, reseal, seal
from modelyard.storage.content.remote_errors import fail_fast_options, translate, tune
from modelyard.storage.content.staged import StagedObjects
from modelyard.storage.index.state_cache import StateCache, hash_file_cached, hash_scanned
from modelyard.storage.parallel import run_parallel

ObjectKind = Literal["file", "dir"]
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
_SMALL_LOCAL = 1 << 20  # files up to this size are stored from one in-memory read
_COPY_SLICE = 8 << 20  # a local copy is hashed behind the kernel in slices this size
_SMALL_REMOTE = CHUNK_SIZE  # remote objects up to this size move in one request, from memory
_REMOTE_IN_FLIGHT = 4  # put_many: uploads to a remote store at once, in this process
# Shared by every put_many of the process: a server taking several batches at once holds
# at most this many objects in memory for the store, not this many per batch.
_REMOTE_SLOTS = threading.BoundedSemaphore(_REMOTE_IN_FLIGHT)
_LIST_THRESHOLD = 4  # digests sharing a prefix from which one LIST beats a HEAD each
# Object stores, where a PUT or a completed multipart upload appears all at once and an
# upload opened with autocommit=False stays invisible until commit(). Anything else
# gets a temporary name and a rename.
_OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "az", "adl"})
# A registry's store holds this file at its root (written before its first object), so
# ``data gc --remote`` can tell it from a data remote: the same layout, but its references
# live in the registry database, not in git.
REGISTRY_MARKER = "MODELYARD_REGISTRY"



@dataclass(frozen=True, slots=True)
class StoredTree:
    """What ``put_tree`` stored: a file's object, or a directory's manifest object."""

    digest: str
    kind: ObjectKind
    size: int
    file_count: int
    manifest: Manifest | None


def _make_temp(directory: str, mode: int) -> tuple[int, str]:
    """A new file (fd, path) in ``directory`` with ``mode`` (less the umask).

    The fd is writable whatever the mode: permissions only apply to later opens.
    """
    while True:
        path = os.path.join(directory, f".modelyard-{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        return fd, path


def _sent_wrong(digest: str, actual: str) -> IntegrityError:
    """Content that arrived (over the network) for ``digest`` but hashes to ``actual``."""
    return IntegrityError(f"the content sent for {digest} hashes to {actual}",
                          hint="send the bytes of that digest", digest=digest)


def _length(pieces: Pieces) -> int:
    return sum(len(piece) for piece in pieces)


def _unlink_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def is_inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class VerifiedReader(io.RawIOBase):
    """A read stream over one object that raises IntegrityError at EOF on a digest mismatch.

    Only a stream read to its end is verified; stopping early checks nothing.
    """

    def __init__(self, raw: io.BufferedIOBase, digest: str, size_hint: int | None) -> None:
        super().__init__()
        self._raw = raw
        self._digest = digest
        self._hasher = new_hasher(size_hint)
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = self._raw.readinto(view)
        if n:
            self._hasher.update(view[:n])
        elif not self._checked:
            self._checked = True
            actual = format_digest(self._hasher.hexdigest())
            if actual != self._digest:
                raise _corrupted(self._digest, f"its content hashes to {actual}")
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def _corrupted(digest: str, problem: str) -> IntegrityError:
    return IntegrityError(
        f"object {digest} is corrupted: {problem}",
        hint="restore it from another copy, or store the original again",
        digest=digest,
    )


class ObjectStore:
    """Content-addressed objects under a folder, ``file://``, ``s3://`` or any fsspec URL."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None,
                 *, registry: bool = False, chunked: bool = True) -> None:
        self.url = url
        # Large files go in as content-defined chunks (see ``storage.content.chunked``);
        # a store whose objects are linked into working trees keeps them whole.
        self.chunking = chunking.DEFAULT_POLICY if chunked else None
        self.chunk_bytes_sent = chunked_store.SentBytes()
        self._unmarked = registry  # a registry's store: write REGISTRY_MARKER before objects
        options = fail_fast_options(url, storage_options)
        retries = {"retries": options.pop("retries")} if "retries" in options else {}
        try:
            fs, root = fsspec.core.url_to_fs(os.path.expanduser(url), **options)
        except ImportError as exc:
            raise StorageUnavailable(
                f"no driver for object store {url}: {exc}",
                hint=missing_driver_hint(url),
            ) from exc
        except ValueError as exc:
            raise InvalidInput(f"not a usable object store URL: {url} ({exc})") from exc
        self.fs: fsspec.AbstractFileSystem = fs
        self._unsynced = PendingDirs()  # local folders with renamed-in objects to fsync
        tune(fs, retries)
        self.is_local = isinstance(fs, LocalFileSystem)
        self.root: str = os.path.abspath(root) if self.is_local else root.rstrip("/")
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        self._object_store = bool(protocols & _OBJECT_STORE_PROTOCOLS)

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    # -- addressing ---------------------------------------------------------------

    def _path(self, digest: str) -> str:
        hex_digest = parse_digest(digest)
        if self.is_local:
            return os.path.join(self.root, hex_digest[:2], hex_digest[2:])
        return f"{self.root}/{hex_digest[:2]}/{hex_digest[2:]}"

    def local_path(self, digest: str) -> str:
        """Where a local store keeps ``digest`` (to link or copy it without a stream)."""
        if not self.is_local:
            raise InvalidInput(f"object store {self.url} is not a local folder")
        return self._path(digest)

    @contextmanager
    def _remote(self, *, writing: bool = False) -> Iterator[None]:
        """Turn network, credential and permission failures of a remote store (and, while
        ``writing``, a missing bucket) into StorageUnavailable; everything else
        (FileNotFoundError of a read included) passes through."""
        try:
            yield
        except Exception as exc:
            translated = None if self.is_local else translate(
                exc, self.url, self.fs, self.root, writing=writing)
            if translated is None:
                raise
            raise translated from exc

    def translated_errors(self, *, writing: bool = False) -> AbstractContextManager[None]:
        """The store's own translation of driver errors, for helpers that call ``fs``."""
        return self._remote(writing=writing)

    # -- existence and metadata ---------------------------------------------------

    def exists(self, digest: str) -> bool:
        path = self._path(digest)
        if self.is_local:
            return os.path.isfile(path)
        with self._remote():
            try:
                self.fs.info(path, refresh=True)
            except FileNotFoundError:
                return False
        return True

    def exists_many(self, digests: Iterable[str], workers: int | None = None) -> set[str]:
        """The subset of ``digests`` present; remote stores list a prefix only when it pays."""
        wanted = set(digests)
        if self.is_local:
            return {d for d in wanted if os.path.isfile(self._path(d))}
        return set(self._remote_sizes(wanted, workers))

    def _remote_sizes(self, digests: Iterable[str], workers: int | None) -> dict[str, int]:
        """Size of each present digest: a HEAD each, or one LIST per prefix when it pays."""
        wanted = {d: parse_digest(d) for d in set(digests)}
        by_prefix: dict[str, list[str]] = {}
        for digest, hex_digest in wanted.items():
            by_prefix.setdefault(hex_digest[:2], []).append(digest)

        def head(digest: str) -> list[tuple[str, int]]:
            with self._remote():
                try:
                    return [(digest, int(self.fs.info(self._path(digest), refresh=True)["size"]))]
                except FileNotFoundError:
                    return []

        def check(group: list[str]) -> list[tuple[str, int]]:
            if len(group) < _LIST_THRESHOLD:
                return [found for d in group for found in head(d)]
            prefix = f"{self.root}/{wanted[group[0]][:2]}"
            with self._remote():
                try:
                    listed = self.fs.ls(prefix, detail=True, refresh=True)
                except FileNotFoundError:
                    return []
            sizes = {str(e["name"]).rsplit("/", 1)[-1]: int(e.get("size") or 0) for e in listed}
            return [(d, sizes[wanted[d][2:]]) for d in group if wanted[d][2:] in sizes]

        units: list[list[str]] = []
        for group in by_prefix.values():
            units.extend([group] if len(group) >= _LIST_THRESHOLD else [[d] for d in group])
        return dict(found for part in run_parallel(check, units, workers) for found in part)

    def intact_many(self, sizes: Mapping[str, int], workers: int | None = None,
                    rehash: bool = False) -> set[str]:
        """The digests of ``sizes`` whose stored object can be trusted as it is.

        An object of the wrong size is damaged. A local object whose seal (see
        ``storage.object_seal``) is broken is re-hashed, so re-storing content stays a
        stat per file unless something wrote to the object. Remote objects are judged by
        size only: re-hashing them would mean downloading them (``verify`` does that).
        ``rehash``: re-hash local objects even when sealed (a repair).
        """
        if not self.is_local:
            present = self._remote_sizes(sizes, workers)
            return {d for d, size in present.items() if size == sizes[d] or
                    chunked.list_intact(self, d, sizes[d], size)}

        def read_back(digest: str, st: os.stat_result) -> bool:
            """Whether an object the stat could not vouch for is intact, by reading it."""
            path = self._path(digest)
            if st.st_size != sizes[digest]:
                listed = chunked.list_intact(self, digest, sizes[digest], st.st_size)
                if listed:  # a chunk list: young again, so a gc keeps it and its chunks
                    refresh(path, digest, st)
                return listed
            try:
                intact = self.verify(digest)
            except NotFound:
                return False
            if intact:
                reseal(path, digest, st)
                refresh(path, digest, st)
            return intact

        # A stat each, in this thread (handing a stat to a worker costs more than the stat);
        # only objects that must be read (a chunk list, a broken seal) go to threads.
        sealed: set[str] = set()
        unsure: list[tuple[str, os.stat_result]] = []
        for digest in sorted(sizes):
            path = self._path(digest)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if st.st_size == sizes[digest] and is_sealed(st, digest) and not rehash:
                refresh(path, digest, st)
                sealed.add(digest)
            else:
                unsure.append((digest, st))
        checked = run_parallel(lambda found: read_back(*found), unsure, workers)
        return sealed | {d for (d, _), ok in zip(unsure, checked, strict=True) if ok}

    def size(self, digest: str) -> int:
        """The content's size (a chunked file's whole size, not its list's)."""
        stored = self.stored_size(digest)
        listed = chunked.list_at(self, digest, stored)
        return stored if listed is None else listed.size

    def stored_size(self, digest: str) -> int:
        """Bytes the object itself takes (a chunk list's, for a chunked file)."""
        path = self._path(digest)
        try:
            if self.is_local:
                return os.stat(path).st_size
            with self._remote():
                return int(self.fs.info(path, refresh=True)["size"])
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def stored_sizes(self, digests: Iterable[str], workers: int | None = None) -> dict[str, int]:
        """Stored size of each present digest, asked in batches on a remote store."""
        if not self.is_local:
            return self._remote_sizes(digests, workers)
        found = {}
        for digest in set(digests):
            with suppress(FileNotFoundError):
                found[digest] = os.stat(self._path(digest)).st_size
        return found

    def iter_digests(self) -> Iterator[str]:
        """Every stored object's digest (temporary files and strays are skipped)."""
        if self.is_local:
            yield from self._iter_local()
            return
        with self._remote():
            try:
                paths = self.fs.find(self.root)
            except FileNotFoundError:
                return
        for path in paths:
            parent, _, name = str(path).rpartition("/")
            root, _, prefix = parent.rpartition("/")
            candidate = DIGEST_PREFIX + prefix + name
            if root == self.root and len(prefix) == 2 and is_digest(candidate):
                yield candidate

    def _iter_local(self) -> Iterator[str]:
        try:
            prefixes = sorted(os.scandir(self.root), key=lambda e: e.name)
        except FileNotFoundError:
            return
        for prefix in prefixes:
            if len(prefix.name) != 2 or not prefix.is_dir():
                continue
            with os.scandir(prefix.path) as it:
                for entry in it:
                    candidate = DIGEST_PREFIX + prefix.name + entry.name
                    if is_digest(candidate):
                        yield candidate

    def _not_found(self, digest: str) -> NotFound:
        return NotFound(f"object {digest} is not in the store {self.url}", digest=digest)

    # -- writing ------------------------------------------------------------------

    def put_file(
        self,
        path: str | os.PathLike[str],
        digest: str | None = None,
        progress: Progress | None = None,
        rehash: bool = False,
    ) -> str:
        """Store a file and return its digest; content already stored intact is not written
        again, and a damaged object under the same digest is replaced (see ``intact_many``).

        A ``digest`` given by the caller (e.g. from the state cache) is checked while
        copying: a file that no longer matches raises IntegrityError and stores nothing.
        """
        source = os.fspath(path)
        size = _source_size(source, "read" if digest else "hash")
        policy = self._policy_for(size)
        if digest is None and policy is None:
            digest = hash_file(source)
        if digest is not None:  # a chunked file's digest comes from its one chunking pass
            digest = format_digest(parse_digest(digest))
            if self.intact_many({digest: size}, rehash=rehash):
                if progress is not None:
                    progress(size)
                return digest
        if policy is not None:
            self._mark_registry()
            return chunked.write_chunked(self, source, digest, policy, progress, rehash)
        assert digest is not None
        self._write_file(source, digest, progress)
        self._unsynced.flush()
        return digest

    def _policy_for(self, size: int) -> chunking.ChunkPolicy | None:
        """The chunk policy if a file of ``size`` bytes goes in as chunks, else None."""
        return self.chunking if self.chunking is not None and self.chunking.applies(
            size) else None

    def put_bytes(self, data: bytes, rehash: bool = False, digest: str | None = None) -> str:
        """Store ``data``; ``digest``: its address, when the caller has just verified it
        (a chunk) or it is a chunk list's file digest; such data is written as given."""
        if digest is None:
            digest = hash_bytes(data)
            if self.intact_many({digest: len(data)}, rehash=rehash):
                return digest
        self._mark_registry()
        target = self._path(digest)
        if self.is_local:
            self._commit_local(target, digest, lambda out: out.write(data))
        else:
            self._put_remote_bytes(target, data)
        return digest

    def put_many(self, objects: Iterable[tuple[str, Pieces]]) -> int:
        """Store each ``(digest, pieces)`` of ``objects`` as it comes (an upload's frames,
        read from the network while earlier ones are written, in the pieces they arrived
        in: hashed and written where they lie, never joined), each visible only once it
        hashed to its digest: the first that does not raises IntegrityError, the ones
        before it kept and none after it stored. Local content the store holds intact is
        skipped unread. A local store fsyncs each object before it appears and the folders
        once for the whole batch; a remote one keeps up to ``_REMOTE_IN_FLIGHT`` uploads
        going, counted over the whole process. Returns how many objects were written."""

        def verified(digest: str, pieces: Pieces) -> tuple[str, Pieces]:
            digest = format_digest(parse_digest(digest))
            actual = hash_pieces(pieces)
            if actual != digest:
                raise _sent_wrong(digest, actual)
            return digest, pieces

        self._mark_registry()
        written = 0
        if self.is_local:
            with chunked.ChunkWriter(self) as writer:
                for digest, pieces in objects:
                    if not self.intact_many({digest: _length(pieces)}, workers=1):
                        writer.write(*verified(digest, pieces))
                        written += 1
            return written
        slots = _REMOTE_SLOTS

        def upload(digest: str, data: bytes) -> bool:
            try:
                if self.intact_many({digest: len(data)}, workers=1):
                    return False
                self._put_remote_bytes(self._path(digest), data)
                return True
            finally:
                slots.release()

        with ThreadPoolExecutor(_REMOTE_IN_FLIGHT) as pool:
            uploads: deque[Future[bool]] = deque()
            for digest, pieces in objects:
                checked, _ = verified(digest, pieces)
                # joined here, so an upload waiting for its slot holds one copy, and the
                # received pieces (views of larger buffers) are let go at once
                data = b"".join(pieces)
                del pieces
                slots.acquire()
                uploads.append(pool.submit(upload, checked, data))
                while uploads and uploads[0].done():  # the first failure ends the batch
                    written += uploads.popleft().result()
            return written + sum(upload.result() for upload in uploads)

    def put_stream(self, src: Readable, digest: str, size_hint: int | None = None) -> None:
        """Store what ``src`` holds under ``digest``: for content that arrives over a
        network, so it is never whole in memory. It is hashed as it is written and becomes
        visible only if it hashes to ``digest`` (IntegrityError otherwise, and nothing is
        left)."""
        digest = format_digest(parse_digest(digest))
        self._mark_registry()

        def write(out: Any) -> None:
            actual, _ = copy_and_hash(src, out, size_hint=size_hint)
            if actual != digest:
                raise _sent_wrong(digest, actual)

        target = self._path(digest)
        if self.is_local:
            self._commit_local(target, digest, write)
        else:
            self._put_remote_stream(target, write)

    def _commit_local(self, target: str, digest: str, write: Callable[[Any], object]) -> None:
        """What ``write(file)`` writes, fsynced, sealed and renamed to ``target``; nothing
        is left if it raises."""
        fd, tmp = self._local_temp(target)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
            seal(tmp, digest)
            os.replace(tmp, target)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        self._unsynced.add(os.path.dirname(target))
        self._unsynced.flush()

    def _mark_registry(self) -> None:
        if not self._unmarked:
            return
        self._unmarked = False
        text = b"A Modelyard registry keeps versions here: not a data remote to gc.\n"
        if self.is_local:
            os.makedirs(self.root, exist_ok=True)
            marker = os.path.join(self.root, REGISTRY_MARKER)
            if not os.path.exists(marker):
                fd, tmp = _make_temp(self.root, 0o444)
                with os.fdopen(fd, "wb") as out:
                    out.write(text)
                os.replace(tmp, marker)
            return
        with self._remote(writing=True):
            if not self.fs.exists(f"{self.root}/{REGISTRY_MARKER}"):
                self.fs.pipe_file(f"{self.root}/{REGISTRY_MARKER}", text)

    def _local_temp(self, target: str) -> tuple[int, str]:
        directory = os.path.dirname(target)
        # Read-only: stored objects are immutable, so guard them against accidental writes.
        try:
            return _make_temp(directory, 0o444)
        except FileNotFoundError:  # first object under this prefix
            new_root = not os.path.isdir(self.root)
            os.makedirs(directory, exist_ok=True)
            self._unsynced.add(self.root)  # the new prefix folder's entry
            if new_root:
                self._unsynced.add(os.path.dirname(self.root))
            return _make_temp(directory, 0o444)

    def _write_missing(self, source: str, digest: str, size: int, progress: Progress | None,
                       staged: StagedObjects | None) -> None:
        """Store a folder's file known to be missing: chunked when large, else whole."""
        policy = self._policy_for(size)
        if policy is not None:
            chunked.write_chunked(self, source, digest, policy, progress)
        else:
            self._write_file(source, digest, progress, staged)

    def _write_file(self, source: str, digest: str, progress: Progress | None,
                    staged: StagedObjects | None = None) -> None:
        """Copy ``source`` into the store under ``digest``, hashing as it goes; a local
        copy is renamed into place now (fsynced first) or by ``staged``'s commit."""
        self._mark_registry()
        try:
            # Unbuffered: every branch reads whole slices, and a buffered file costs three
            # more system calls to open (70,000 small files pay them 70,000 times).
            src = open(source, "rb", buffering=0)  # noqa: SIM115 - closed below
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise InvalidInput(f"cannot read {source}: {exc.strerror}", path=source) from exc
        with src:
            size = os.fstat(src.fileno()).st_size
            if self.is_local:
                self._write_local(src, size, digest, progress, source, staged)
            elif size <= _SMALL_REMOTE:
                data = src.read()
                self._check_source(source, digest, hash_bytes(data))
                self._put_remote_bytes(self._path(digest), data)
                if progress is not None:
                    progress(len(data))
            else:

                def stream(out: Any) -> None:
                    actual, _ = copy_and_hash(src, out, progress, size)
                    self._check_source(source, digest, actual)

                self._put_remote_stream(self._path(digest), stream)

    def _write_local(self, src: io.FileIO, size: int, digest: str,
                     progress: Progress | None, source: str,
                     staged: StagedObjects | None) -> None:
        target = self._path(digest)
        fd, tmp = self._local_temp(target)
        try:
            actual = _copy_then_hash(src, fd, tmp, size, progress, durable=staged is None)
            self._check_source(source, digest, actual)
            seal(tmp, digest)
            if staged is None:
                os.replace(tmp, target)  # also replaces a damaged object, atomically
        except BaseException:
            _unlink_quietly(tmp)
            raise
        if staged is None:
            self._unsynced.add(os.path.dirname(target))
        else:
            staged.add(tmp, target, size)

    def _put_remote_bytes(self, target: str, data: bytes) -> None:
        """Upload verified bytes: one PUT on an object store (atomic by nature)."""
        if self._object_store:
            with self._remote(writing=True):
                self.fs.pipe_file(target, data)
        else:
            self._put_via_temp(target, lambda out: out.write(data))

    def _put_remote_stream(self, target: str, write: Callable[[Any], object]) -> None:
        """Upload what ``write(file)`` writes; ``target`` appears only if it returns.

        ``write`` raises to abandon the upload (e.g. on a digest mismatch).
        """
        if not self._object_store:
            self._put_via_temp(target, write)
            return
        with self._remote(writing=True):
            # autocommit=False: parts are uploaded as they fill, but the object appears
            # only when commit() completes the multipart upload, after ``write`` returned.
            out = self.fs.open(target, "wb", autocommit=False)
            try:
                write(out)
                out.close()
                out.commit()
            except BaseException:
                with suppress(Exception):
                    out.discard()  # aborts the multipart upload: nothing becomes visible
                    out.closed = True  # closing again would try to upload the buffer
                raise

    def _put_via_temp(self, target: str, write: Callable[[Any], object]) -> None:
        """Filesystems other than object stores: a temporary name, then a rename."""
        directory = target.rsplit("/", 1)[0]
        tmp = f"{directory}/.modelyard-{secrets.token_hex(8)}.tmp"
        with self._remote(writing=True):
            self.fs.makedirs(directory, exist_ok=True)
            try:
                with self.fs.open(tmp, "wb") as out:
                    write(out)
                self.fs.mv(tmp, target)
            except BaseException:
                with suppress(Exception):
                    self.fs.rm_file(tmp)
                raise

    @staticmethod
    def _check_source(source: str, expected: str, actual: str) -> None:
        if actual != expected:
            raise IntegrityError(
                f"{source} does not match digest {expected} (it hashes to {actual});"
                " it probably changed while being stored",
                hint="store it again",
                path=source,
            )

    def put_tree(
        self,
        path: str | os.PathLike[str],
        progress: Progress | None = None,
        workers: int | None = None,
        ignore: Ignore | None = None,
        cache: StateCache | None = None,
        link_roots: Sequence[str] = (),
    ) -> StoredTree:
        """Store a file, or a directory's files plus its manifest; return what was stored.

        ``progress`` counts bytes of the tree; files already stored count at once.
        ``link_roots``: see ``scan_directory``.
        """
        source = os.fspath(path)
        if not os.path.exists(source):
            raise InvalidInput(f"path not found: {source}", path=source)
        self._mark_registry()  # once, before the parallel writes below
        if not os.path.isdir(source):
            size = os.path.getsize(source)
            # Chunking hashes the whole file in the same read; without a state cache to ask,
            # hashing it first would read it twice.
            known = None if cache is None and self._policy_for(size) else hash_file_cached(
                source, cache)
            digest = self.put_file(source, known, progress)
            return StoredTree(digest, "file", size, 1, None)

        files = scan_directory(source, ignore, link_roots)
        # Without a state cache, large files are chunked straight away: their one chunking
        # pass yields the digest and writes only new chunks (hashing first reads them twice).
        chunked_now = [f for f in files if cache is None and self._policy_for(f.size)]
        rest = [f for f in files if not (cache is None and self._policy_for(f.size))]
        digests = hash_scanned(rest, cache, workers)
        digests.update(zip([f.abspath for f in chunked_now], run_parallel(
            lambda f: self.put_file(f.abspath, None, progress), chunked_now, workers),
            strict=True))
        return self.put_listed(Manifest.of_scan(files, digests), rest, progress, workers)

    def put_listed(self, manifest: Manifest, files: Sequence[ScannedFile],
                   progress: Progress | None = None, workers: int | None = None,
                   stored: Collection[str] = ()) -> StoredTree:
        """Store ``files`` (scanned and hashed already, as ``manifest`` lists them), then
        the manifest: a caller that has described a folder does not scan or hash it again.

        ``stored``: digests the caller knows this store holds (those a manifest it holds
        lists: a manifest is stored only after its files), which are not looked up again.
        """
        first_copy: dict[str, tuple[str, int]] = {}
        for f in files:
            digest = manifest.by_path[f.path].digest
            if digest not in stored:
                first_copy.setdefault(digest, (f.abspath, f.size))
        if progress is not None:  # the repeats and the known: put_files counts the rest
            progress(sum(f.size for f in files) - sum(n for _, n in first_copy.values()))
        self.put_files(first_copy, progress, workers)
        digest = self.put_bytes(manifest.to_bytes())
        self._unsynced.flush()
        return StoredTree(digest, "dir", manifest.total_size, manifest.file_count, manifest)

    def put_files(self, sources: Mapping[str, tuple[str, int]],
                  progress: Progress | None = None, workers: int | None = None,
                  on_object: Callable[[], None] | None = None) -> set[str]:
        """Store local files by their known digests (``digest -> (path, size)``), skipping
        those held intact; returns the digests written. ``on_object()`` is called as each
        object is done (written or found).

        Each file is copied and re-hashed as it lands, so one that changed since it was
        hashed is refused (``IntegrityError``), never stored under the old digest. Local
        objects are made durable and renamed into place in batches (``StagedObjects``),
        their folders synced before this returns, so whatever names them (a manifest)
        can follow: a push or pull of 70,000 small files pays a few syncs, not 140,000.
        """
        if not sources:
            return set()
        self._mark_registry()  # once, before the parallel writes below
        missing = set(sources) - self.intact_many({d: n for d, (_, n) in sources.items()},
                                                  workers)
        if progress is not None:
            progress(sum(n for d, (_, n) in sources.items() if d not in missing))
        if on_object is not None:
            for _ in range(len(sources) - len(missing)):
                on_object()
        staged = StagedObjects(self.root, self._unsynced) if self.is_local else None

        def write(digest: str) -> None:
            path, size = sources[digest]
            self._write_missing(path, digest, size, progress, staged)
            if on_object is not None:
                on_object()

        # Small local files are written in this thread, as they are hashed (see SMALL_FILE).
        inline = {d for d in missing if staged is not None and sources[d][1] < SMALL_FILE}
        with staged or nullcontext():
            for d in sorted(inline):
                write(d)
            run_parallel(write, sorted(missing - inline), workers)
        self._unsynced.flush()
        return missing

    # -- reading ------------------------------------------------------------------

    def _open_raw(self, digest: str, check_chunks: bool = True) -> io.BufferedIOBase:
        """The object's content: its bytes, or the stream of its chunks (see
        ``chunked.open_raw`` for ``check_chunks``)."""
        plain = self._open_plain(digest)
        try:
            with self._remote():
                return chunked.open_raw(self, digest, plain, check_chunks)
        except BaseException:
            plain.close()
            raise

    def _open_plain(self, digest: str) -> io.BufferedIOBase:
        """The object's stored bytes as they are (a chunk list stays a list)."""
        path = self._path(digest)
        try:
            if self.is_local:
                return open(path, "rb")
            with self._remote():
                return self.fs.open(path, "rb")  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def open_verified(self, digest: str) -> VerifiedReader:
        """A binary stream of the object; reading it to the end verifies it."""
        raw = self._open_raw(digest)
        return VerifiedReader(raw, format_digest(parse_digest(digest)), known_size(raw))

    def get_bytes(self, digest: str, max_size: int = DEFAULT_MAX_BYTES,
                  verified: bool = True) -> bytes:
        """A small object's verified content (manifests, metadata); ``verified=False``
        only for a chunk whose file is hashed whole before anyone sees it."""
        with self._open_plain(digest) as raw, self._remote():
            size = known_size(raw)
            too_big = size is not None and size > max_size
            data = b"" if too_big else raw.read(max_size + 1 if size is None else size + 1)
        if too_big or len(data) > max_size:
            raise InvalidInput(
                f"object {digest} is larger than {max_size} bytes; stream it instead",
                digest=digest,
            )
        if not verified:
            return data
        actual = hash_bytes(data)
        if actual != digest:
            raise _corrupted(digest, f"its content hashes to {actual}")
        return data

    def _fetch_small_remote(self, entry: Entry) -> bytes:
        """A small remote object's verified bytes in one ranged GET (no HEAD first),
        which halves the requests for a tree of many small files."""
        if entry.size == 0:  # the digest alone proves the content; nothing to fetch
            data = b""
        else:
            try:
                with self._remote():
                    data = self.fs.cat_file(self._path(entry.digest), start=0, end=entry.size + 1)
            except FileNotFoundError:
                raise self._not_found(entry.digest) from None
            except OSError as exc:  # e.g. a range the (altered) object cannot satisfy
                raise _corrupted(entry.digest, f"it cannot be read back ({exc})") from exc
        actual = hash_bytes(data)
        if actual != entry.digest:
            raise _corrupted(entry.digest, f"its content hashes to {actual}")
        return data

    def get_manifest(self, digest: str) -> Manifest:
        """A directory object's manifest, verified and validated."""
        return Manifest.from_bytes(self.get_bytes(digest))

    def verify(self, digest: str) -> bool:
        """Whether the stored bytes still hash to ``digest`` (NotFound if absent)."""
        with self._open_raw(digest, check_chunks=False) as raw, self._remote():
            try:
                actual, _ = hash_stream(raw, size_hint=known_size(raw))
            except IntegrityError:  # a chunk of it is damaged or missing
                return False
        return actual == digest

    def delete(self, digest: str) -> bool:
        """Remove an object; False if it was not there."""
        path = self._path(digest)
        if self.is_local:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            return True
        if not self.exists(digest):
            return False
        with self._remote():
            self.fs.rm_file(path)
        return True

    def _download(
        self, raw: io.BufferedIOBase, digest: str, fd: int, tmp: str, progress: Progress | None
    ) -> None:
        """Copy an opened object into ``fd`` (the file ``tmp``) and verify it (the caller
        cleans up)."""
        if self.is_local and not chunked.is_chunked(raw):
            actual = _copy_then_hash(raw, fd, tmp, known_size(raw) or 0, progress)
        elif self.is_local:
            actual = _copy_pieces_then_hash(
                [(partial(open, self._path(c), "rb", buffering=0), n)
                 for c, n in chunked.chunks_of(raw)], fd, tmp, progress)
        else:
            with os.fdopen(fd, "wb") as out, self._remote():
                actual, _ = copy_and_hash(raw, out, progress, known_size(raw))
        if actual != digest:
            chunked.explain_mismatch(self, raw)
            raise _corrupted(digest, f"its content hashes to {actual}")

    def get_file(
        self,
        digest: str,
        dest: str | os.PathLike[str],
        progress: Progress | None = None,
        executable: bool = False,
    ) -> None:
        """Write an object to ``dest`` atomically; nothing appears there unless it verified."""
        digest = format_digest(parse_digest(digest))
        target = os.path.abspath(dest)
        directory = os.path.dirname(target)
        with self._open_raw(digest, check_chunks=False) as raw:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = _make_temp(directory, 0o777 if executable else 0o666)
            try:
                self._download(raw, digest, fd, tmp, progress)
                os.replace(tmp, target)
            except BaseException:
                _unlink_quietly(tmp)
                raise

    def materialize(
        self,
        digest: str,
        kind: ObjectKind,
        dest_dir: str | os.PathLike[str],
        filename: str | None = None,
        progress: Progress | None = None,
        workers: int | None = None,
    ) -> str:
        """Write a stored file or directory under ``dest_dir``; see ``storage.tree_checkout``."""
        from modelyard.storage.content.tree_checkout import materialize

        return materialize(self, digest, kind, dest_dir, filename, progress, workers)

    def fetch_entry(self, entry: Entry, dest: str, progress: Progress | None = None) -> None:
        """Create ``dest`` (which must not exist) with a manifest entry's verified content."""
        mode = 0o777 if entry.executable else 0o666
        if entry.size <= _SMALL_REMOTE and not self.is_local and not (
                self.chunking is not None and self.chunking.applies(entry.size)):
            data = self._fetch_small_remote(entry)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            if progress is not None:
                progress(entry.size)
            return
        with self._open_raw(entry.digest, check_chunks=False) as raw:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            self._download(raw, entry.digest, fd, dest, progress)


def _copy_then_hash(
    src: Any, fd: int, dest: str, size: int, progress: Progress | None, *, durable: bool = False
) -> str:
    """Local copy: the kernel moves the bytes (copy_file_range) while the copy is hashed.

    ``durable``: fsync the copy before returning (objects about to be referenced by a
    commit); a download into the user's folder does not pay for it.

    Hashing what landed, not what was read, verifies the stored bytes themselves; past
    ``_SMALL_LOCAL`` it is about four times faster than hashing while copying through
    Python buffers (1 GiB: 1.0 s against 3.8 s), as the second read hits the page cache.
    """
    if size <= _SMALL_LOCAL:  # small: one read, hashed in memory, no second open
        data = src.read()
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        if progress is not None:
            progress(len(data))
        return hash_bytes(data)
    return _copy_pieces_then_hash([(lambda: nullcontext(src), size)], fd, dest, progress,
                                  durable=durable)


def _copy_pieces_then_hash(
    pieces: Iterable[tuple[Callable[[], AbstractContextManager[Any]], int]], fd: int, dest: str,
    progress: Progress | None, *, durable: bool = False,
) -> str:
    """Append each piece (``(open it, size)``: a file, or a chunked file's chunk files) to
    ``dest`` in the kernel, and hash what landed as it lands.

    The copy goes in slices of ``_COPY_SLICE`` bytes; one thread hashes each slice back
    from the page cache while the kernel copies the next, so the two passes overlap on two
    cores instead of running one after the other. A missing piece or a short one ends the
    copy early: the digest then cannot match, and the caller says why.
    """
    hasher = new_hasher()
    with os.fdopen(fd, "wb") as out, open(dest, "rb", buffering=0) as back, \
            ThreadPoolExecutor(1) as hashing:
        behind: deque[Future[None]] = deque()
        hashed = landed = 0  # bytes handed to the hashing thread / copied

        def hash_landed() -> None:
            nonlocal hashed
            behind.append(hashing.submit(_hash_range, hasher, back.fileno(), hashed,
                                         landed - hashed))
            hashed = landed
            while len(behind) > 1 and behind[0].done():
                behind.popleft().result()

        for opener, size in pieces:
            try:
                opened = opener()
            except FileNotFoundError:
                break
            with opened as src:
                for n in _kernel_copy(src, out, size):
                    landed += n
                    if progress is not None:
                        progress(n)
                    if landed - hashed >= _COPY_SLICE:  # small chunks: hash them together
                        hash_landed()
        if landed > hashed:
            hash_landed()
        if durable:
            out.flush()
            os.fsync(out.fileno())
        for pending in behind:
            pending.result()
    return format_digest(hasher.hexdigest())


def _hash_range(hasher: Any, fd: int, offset: int, n: int) -> None:
    hasher.update(os.pread(fd, n, offset))


def _kernel_copy(src: Any, out: Any, size: int) -> Iterator[int]:
    """Append up to ``size`` bytes of ``src`` to ``out`` by copy_file_range, yielding each
    slice's length, or through Python buffers between filesystems the kernel cannot copy
    between."""
    copied = 0
    try:
        while copied < size:
            n = os.copy_file_range(src.fileno(), out.fileno(), min(size - copied, _COPY_SLICE))
            if n == 0:
                return
            copied += n
            yield n
    except OSError as exc:
        if copied or exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL,
                                       errno.EOPNOTSUPP):
            raise
    else:
        return
    out.flush()
    while data := src.read(_COPY_SLICE):
        out.write(data)
        out.flush()
        yield len(data)


def _source_size(source: str, verb: str = "read") -> int:
    try:
        return os.path.getsize(source)
    except OSError as exc:
        raise InvalidInput(f"cannot {verb} {source}: {exc.strerror}", path=source) from exc


