"""Remember file digests so unchanged files are not hashed again.

A file counts as unchanged while its inode, size and modification time (ns) are all
the same as when it was hashed. The table lives in SQLite (WAL mode) so several
processes can share it; lookups and inserts are batched so a 70,000-file dataset
costs a few queries, not 70,000.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from types import TracebackType

from modelyard.errors import InvalidInput
from modelyard.storage.content.hashing import hash_files
from modelyard.storage.content.manifest import ScannedFile
from modelyard.storage.index.sqlite_file import connect, write_many

_BATCH = 500  # well under SQLite's bound-parameter limit
_RANGE_FROM = 2_000  # paths from which one range read of their folder beats IN lists
_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_state (
    path     TEXT PRIMARY KEY,
    inode    INTEGER NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    digest   TEXT NOT NULL
) WITHOUT ROWID
"""

StatKey = tuple[int, int, int]


def _key(st: os.stat_result) -> StatKey:
    return _stat_key(st.st_ino, st.st_size, st.st_mtime_ns)


def _stat_key(inode: int, size: int, mtime_ns: int) -> StatKey:
    # Inodes are unsigned 64-bit; SQLite integers are signed.
    return inode if inode < 2**63 else inode - 2**64, size, mtime_ns


def _norm(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(path)


class StateCache:
    """A path → (stat, digest) table in a SQLite file, safe to share between processes."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self.db_path = os.fspath(db_path)
        self._db = connect(self.db_path, _SCHEMA, threads=True)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def get(self, path: str | os.PathLike[str], st: os.stat_result) -> str | None:
        """The cached digest if the file still has the stat it was hashed with."""
        return self.get_many([(path, st)]).get(_norm(path))

    def get_many(
        self, items: Iterable[tuple[str | os.PathLike[str], os.stat_result]]
    ) -> dict[str, str]:
        """Cache hits only, keyed by absolute path."""
        return self.lookup({_norm(path): _key(st) for path, st in items})

    def lookup(self, wanted: dict[str, StatKey]) -> dict[str, str]:
        """Hits among absolute, normalised paths, each with the stat key it has now.

        Many paths below one folder (a scanned dataset) are read in one range of the
        primary key, half the time of an ``IN`` list per 500; the range is capped, so a
        folder whose rows are mostly other files falls back to the lists."""
        paths = list(wanted)
        with self._lock:
            rows = self._folder_rows(paths) if len(paths) >= _RANGE_FROM else None
            if rows is None:
                rows = [row for i in range(0, len(paths), _BATCH)
                        for row in self._db.execute(
                            "SELECT path, inode, size, mtime_ns, digest FROM file_state"
                            f" WHERE path IN ({','.join('?' * len(paths[i:i + _BATCH]))})",
                            paths[i:i + _BATCH])]
        hits: dict[str, str] = {}
        for path, inode, size, mtime_ns, digest in rows:
            if wanted.get(path) == (inode, size, mtime_ns):
                hits[path] = digest
        return hits

    def _folder_rows(self, paths: list[str]) -> list[tuple[str, int, int, int, str]] | None:
        """Every row below the paths' common folder, or None if there are over twice as
        many as paths (plus a margin)."""
        # Every string between the first and the last path shares their folder.
        folder = os.path.commonpath([min(paths), max(paths)]).rstrip("/") + "/"
        cap = 2 * len(paths) + 1_000
        rows = self._db.execute(
            "SELECT path, inode, size, mtime_ns, digest FROM file_state"
            " WHERE path >= ? AND path < ? LIMIT ?",
            (folder, folder[:-1] + chr(ord("/") + 1), cap + 1)).fetchall()
        return None if len(rows) > cap else rows

    def put_many(self, items: Iterable[tuple[str | os.PathLike[str], os.stat_result, str]]) -> None:
        """Record digests in one transaction (one fsync, one lock for the whole batch)."""
        self.record([(_norm(path), *_key(st), digest) for path, st, digest in items])

    def record(self, rows: list[tuple[str, int, int, int, str]]) -> None:
        """(absolute path, inode, size, mtime_ns, digest) rows, in one transaction."""
        if not rows:
            return
        with self._lock:
            write_many(self._db, "INSERT OR REPLACE INTO file_state"
                       " (path, inode, size, mtime_ns, digest) VALUES (?, ?, ?, ?, ?)", rows)


def _stat(path: str | os.PathLike[str]) -> os.stat_result:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise InvalidInput(f"cannot hash {os.fspath(path)}: {exc.strerror}") from exc


def hash_paths_cached(
    paths: Sequence[str | os.PathLike[str]],
    cache: StateCache | None,
    workers: int | None = None,
) -> dict[str, str]:
    """Digests of ``paths`` (keyed as given), hashing only files the cache cannot vouch for.

    The stat is taken before hashing: a file modified while being hashed gets a new
    mtime, so the stale digest recorded for the old stat will never be a hit.
    """
    if cache is None:
        return dict(zip([os.fspath(p) for p in paths], hash_files(paths, workers), strict=True))
    return _hash_keyed([(os.fspath(p), _norm(p), _key(_stat(p))) for p in paths], cache,
                       workers)


def hash_scanned(files: Sequence[ScannedFile], cache: StateCache | None,
                 workers: int | None = None) -> dict[str, str]:
    """Digests of scanned files by ``abspath``: the scan's stats (taken before hashing, as
    above) serve as the cache key, so tens of thousands of files are not stat'ed twice."""
    if cache is None:
        paths = [f.abspath for f in files]
        return dict(zip(paths, hash_files(paths, workers, sizes=[f.size for f in files]),
                        strict=True))
    return _hash_keyed([(f.abspath, f.abspath, _stat_key(f.inode, f.size, f.mtime_ns))
                        for f in files], cache, workers)


def _hash_keyed(items: list[tuple[str, str, StatKey]], cache: StateCache,
                workers: int | None) -> dict[str, str]:
    """(path as given, absolute path, stat key) → digest, hashing the cache's misses."""
    hits = cache.lookup({absolute: key for _, absolute, key in items})
    result: dict[str, str] = {}
    misses: list[tuple[str, str, StatKey]] = []
    for item in items:
        digest = hits.get(item[1])
        if digest is None:
            misses.append(item)
        else:
            result[item[0]] = digest
    digests = hash_files([path for path, _, _ in misses], workers,
                         sizes=[size for _, _, (_, size, _) in misses])
    cache.record([(absolute, *key, digest)
                   for (_, absolute, key), digest in zip(misses, digests, strict=True)])
    result.update((path, digest) for (path, _, _), digest in zip(misses, digests, strict=True))
    return result


def hash_file_cached(path: str | os.PathLike[str], cache: StateCache | None) -> str:
    return hash_paths_cached([path], cache)[os.fspath(path)]
