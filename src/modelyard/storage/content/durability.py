"""Making local object writes survive a power loss before the metadata that names them.

A rename is atomic but not durable: until the file's data and the directory entry reach
the disk, a crash can leave a committed version pointing at an empty or absent object.
Files are fsynced before their rename; the folders they were renamed into are fsynced
once per store operation (``PendingDirs``), not once per file, so a tree of thousands of
small files pays one directory sync per prefix folder. Many new files at once can instead
be made durable by one ``sync_filesystem`` (see ``storage.content.staged``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from functools import cache


def fsync_dir(path: str) -> None:
    """Flush a folder's entries (new names, renames) to disk."""
    _fsync_path(path, os.O_RDONLY | os.O_DIRECTORY)


def fsync_file(path: str) -> None:
    """Flush a written file's data and inode to disk (by name: its writer has closed it)."""
    _fsync_path(path, os.O_RDONLY)


def _fsync_path(path: str, flags: int) -> None:
    fd = os.open(path, flags)
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


def sync_filesystem(path: str) -> bool:
    """Flush all written data and inodes of the filesystem holding ``path`` (Linux
    ``syncfs``): one journal commit for a whole batch of new files, where an fsync each
    costs one per file. False where the call does not exist, so the caller fsyncs each
    file instead."""
    syncfs = _syncfs()
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        syncfs(fd)
    finally:
        os.close(fd)
    return True


@cache
def _syncfs() -> Callable[[int], None] | None:
    import ctypes  # on first use: the start-up of every other command stays without it

    try:
        call = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError, TypeError):  # not Linux: no such libc function
        return None

    def syncfs(fd: int) -> None:
        if call(fd) != 0:  # since Linux 5.8 this includes write-back errors
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs: {os.strerror(error)}")

    return syncfs
