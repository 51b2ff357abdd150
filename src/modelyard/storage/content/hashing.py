"""BLAKE3 content digests: the addresses of every object Modelyard stores.

Hashing always streams through a fixed buffer (never a whole file, never ``mmap``,
whose pages would count against the process's memory), and switches on BLAKE3's own
multithreading for large files, where it roughly doubles throughput.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from blake3 import blake3

from modelyard.errors import InvalidInput

DIGEST_PREFIX = "blake3:"
CHUNK_SIZE = 8 * 1024 * 1024
MULTITHREAD_THRESHOLD = 64 * 1024 * 1024
# Files below this size are hashed (and stored, see ``ObjectStore.put_listed``) in the
# calling thread: for them a thread hand-off, and the GIL passed back and forth at every
# system call, costs more than the work (70,000 files of 300 B: 0.9 s in one thread,
# 5.3 s in six); from about this size on, threads overlap reads with hashing.
SMALL_FILE = 64 * 1024

Pieces = Sequence[bytes | memoryview]
"""An object's bytes in the pieces they arrived in (a request body's), never joined."""

Progress = Callable[[int], None]
"""Called with the number of bytes just processed; may be called from worker threads."""

_DIGEST_RE = re.compile(r"blake3:([0-9a-f]{64})")
_HEX_RE = re.compile(r"[0-9a-f]{64}")


class Readable(Protocol):
    def readinto(self, buffer: memoryview, /) -> int | None: ...


class Writable(Protocol):
    def write(self, data: memoryview, /) -> int | None: ...


def format_digest(hex_digest: str) -> str:
    """``blake3:<hex>`` from 64 lowercase hex characters."""
    if not _HEX_RE.fullmatch(hex_digest):
        raise InvalidInput(
            f"not a BLAKE3 hex digest: {hex_digest!r}", hint="expected 64 lowercase hex characters"
        )
    return DIGEST_PREFIX + hex_digest


def parse_digest(text: object) -> str:
    """The 64-hex part of a ``blake3:<hex>`` digest; refuses anything else (even JSON junk)."""
    match = _DIGEST_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInput(
            f"not a valid digest: {text!r}", hint="expected 'blake3:' followed by 64 lowercase hex"
        )
    return match.group(1)


def is_digest(text: object) -> bool:
    return isinstance(text, str) and _DIGEST_RE.fullmatch(text) is not None


def new_hasher(size_hint: int | None = None) -> blake3:
    """A hasher, multithreaded when the input is known to be large."""
    if size_hint is not None and size_hint >= MULTITHREAD_THRESHOLD:
        return blake3(max_threads=blake3.AUTO)
    return blake3()


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    return format_digest(new_hasher(len(data)).update(data).hexdigest())


def hash_pieces(pieces: Pieces) -> str:
    """The digest of the pieces' bytes in order, hashed where they lie."""
    hasher = new_hasher()
    for piece in pieces:
        hasher.update(piece)
    return format_digest(hasher.hexdigest())


def hash_file(path: str | os.PathLike[str], progress: Progress | None = None) -> str:
    """Digest of a file's content, read in ``CHUNK_SIZE`` pieces."""
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the with below
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise InvalidInput(f"cannot hash {os.fspath(path)}: {exc.strerror}") from exc
    with f:
        size = os.fstat(f.fileno()).st_size
        if size <= CHUNK_SIZE:
            # Small files (the common case in datasets): one read, no buffer to allocate.
            data = f.read()
            if progress is not None:
                progress(len(data))
            return hash_bytes(data)
        return hash_stream(f, progress, size)[0]


def default_workers() -> int:
    """Threads for I/O-bound work: enough to keep a disk or a network link busy."""
    return min(32, (os.cpu_count() or 1) + 4)


def hash_files(
    paths: Iterable[str | os.PathLike[str]],
    workers: int | None = None,
    progress: Progress | None = None,
    sizes: Sequence[int] | None = None,
) -> list[str]:
    """Digests of many files, in order, hashed in parallel threads.

    BLAKE3 and file reads both release the GIL, so threads overlap I/O with hashing.
    With ``sizes`` (as a scan saw them), files below ``SMALL_FILE`` are hashed in this
    thread meanwhile.
    """
    paths = list(paths)
    sizes = [SMALL_FILE] * len(paths) if sizes is None else sizes
    threaded = [p for p, size in zip(paths, sizes, strict=True) if size >= SMALL_FILE]
    if len(threaded) <= 1:
        return [hash_file(p, progress) for p in paths]
    with ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        pending = {p: pool.submit(hash_file, p, progress) for p in threaded}
        return [pending[p].result() if size >= SMALL_FILE else hash_file(p, progress)
                for p, size in zip(paths, sizes, strict=True)]


def copy_and_hash(
    src: Readable,
    dst: Writable,
    progress: Progress | None = None,
    size_hint: int | None = None,
) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` while hashing it, so a copy is verified in a single pass.

    Returns ``(digest, size)`` of what was copied. ``dst`` must write everything it is
    given (a buffered file does).
    """
    return _pump(src, dst, progress, size_hint)


def hash_stream(
    src: Readable, progress: Progress | None = None, size_hint: int | None = None
) -> tuple[str, int]:
    """``(digest, size)`` of everything left in an open binary stream."""
    return _pump(src, None, progress, size_hint)


def _pump(
    src: Readable, dst: Writable | None, progress: Progress | None, size_hint: int | None
) -> tuple[str, int]:
    hasher = new_hasher(size_hint)
    # A small object needs a small buffer: allocating CHUNK_SIZE per file would dominate
    # the cost of copying thousands of small files.
    buffer = bytearray(CHUNK_SIZE if size_hint is None else min(CHUNK_SIZE, size_hint + 1))
    view = memoryview(buffer)
    size = 0
    while n := src.readinto(view):
        chunk = view[:n]
        hasher.update(chunk)
        if dst is not None:
            dst.write(chunk)
        size += n
        if progress is not None:
            progress(n)
    return format_digest(hasher.hexdigest()), size


def known_size(raw: io.BufferedIOBase) -> int | None:
    """A stream's size if it is known without a request (fsspec files carry it)."""
    size = getattr(raw, "size", None)
    if isinstance(size, int):
        return size
    try:
        return os.fstat(raw.fileno()).st_size
    except (OSError, io.UnsupportedOperation):
        return None
