"""Making local object writes survive a power loss before the metadata that names them.

A rename is atomic but not durable: until the file's data and the directory entry reach
the disk, a crash can leave a committed version pointing at an empty or absent object.
Files are fsynced before their rename; the folders they were renamed into are fsynced
once per store operation (``PendingDirs``), not once per file, so a tree of thousands of
small files pays one directory sync per prefix folder.
"""

from __future__ import annotations

import os
import threading


def fsync_dir(path: str) -> None:
    """Flush a folder's entries (new names, renames) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PendingDirs:
    """Folders whose new entries still need an fsync; safe to use from worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._dirs: set[str] = set()

    def add(self, *paths: str) -> None:
        with self._lock:
            self._dirs.update(paths)

    def flush(self) -> None:
        """Fsync every pending folder (children before parents, so a new prefix folder's
        own entry in the root is synced after its content). Flushes take turns: one whose
        folders a concurrent flush took returns only once that one has synced them, so
        each caller (a batch about to be acknowledged) knows its own folders are on disk."""
        with self._flushing:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            dirs, self._dirs = self._dirs, set()
        for path in sorted(dirs, key=len, reverse=True):
            try:
                fsync_dir(path)
            except FileNotFoundError:  # removed meanwhile (e.g. by gc): nothing to keep
                continue
