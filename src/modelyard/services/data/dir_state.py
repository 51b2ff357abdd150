"""Folder fingerprints: skip building a 70,000-entry manifest when nothing changed.

A folder's fingerprint is the BLAKE3 of every file's (path, inode, size, mtime_ns,
mode) from one scan. If the fingerprint matches the one recorded with a manifest
digest, the folder still has that digest: no per-file cache lookups, no manifest
built. Any touched, added, removed or renamed file changes the fingerprint. The table
lives in the workspace's ``state.db``.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.domain.pointer import Pointer
from modelyard.storage.content.hashing import hash_bytes
from modelyard.storage.content.manifest import ScannedFile
from modelyard.storage.index.sqlite_file import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dir_state (
    path        TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    digest      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    file_count  INTEGER NOT NULL
) WITHOUT ROWID
"""


def fingerprint(files: Sequence[ScannedFile]) -> str:
    lines = "\n".join(f"{f.path}\0{f.inode}\0{f.size}\0{f.mtime_ns}\0{f.mode}" for f in files)
    return hash_bytes(lines.encode("utf-8", "surrogateescape"))


class DirState:
    def __init__(self, db_path: str) -> None:
        self._db = connect(db_path, _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def get(self, path: str, print_: str) -> Pointer | None:
        row = self._db.execute(
            "SELECT digest, size, file_count FROM dir_state WHERE path = ? AND fingerprint = ?",
            (path, print_),
        ).fetchone()
        return Pointer(row[0], "dir", int(row[1]), int(row[2])) if row else None

    def put(self, path: str, print_: str, pointer: Pointer) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO dir_state (path, fingerprint, digest, size, file_count)"
            " VALUES (?, ?, ?, ?, ?)",
            (path, print_, pointer.digest, pointer.size, pointer.file_count),
        )
