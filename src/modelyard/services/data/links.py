"""Putting a cache object at a working-tree path: reflink, hardlink, symlink or copy.

The first strategy in the configured order that works wins. Whatever shares bytes with
the cache (a hardlink, a symlink) is read-only, because the cache object is; reflinks
and copies are private and writable. Every placement goes to a temporary name first
and is renamed over the target, so a reader never sees a half-written file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import stat
from collections.abc import Sequence
from contextlib import suppress

_FICLONE = 0x40049409  # Linux ioctl: share all extents of another file (copy-on-write)
_FALLBACK_ERRORS = {errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL,
                    errno.EMLINK, errno.ENOSYS, errno.EACCES}


_UNSUPPORTED = {errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS}
"""Refusals that are the filesystems', not one file's (unlike EMLINK, EACCES, EPERM)."""


class Placer:
    """Places the files of one checkout, trying the strategies in order. One that a
    filesystem refuses as such (reflinks on ext4) is not tried again for the next files:
    each try created and deleted a temporary file, and ext4 then makes every later create
    scan past the deleted inodes. Safe to share between worker threads."""

    def __init__(self, strategies: Sequence[str]) -> None:
        self._strategies = list(strategies)
        self._refused: set[str] = set()

    def place(self, source: str, target: str, executable: bool) -> str:
        """Link or copy ``source`` to ``target``; returns the strategy used."""
        directory = os.path.dirname(target)
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, f".modelyard-{secrets.token_hex(8)}.tmp")
        for strategy in self._strategies:
            # A shared inode cannot carry its own execute bit: executables get private bytes.
            if (executable and strategy in ("hardlink", "symlink")) or (
                    strategy in self._refused):
                continue
            try:
                _STRATEGIES[strategy](source, tmp, executable)
            except OSError as exc:
                _remove(tmp)
                if exc.errno in _FALLBACK_ERRORS and strategy != "copy":
                    if exc.errno in _UNSUPPORTED:
                        self._refused.add(strategy)
                    continue
                raise
            try:
                os.replace(tmp, target)  # never a folder: checkout removed what it may remove
            except BaseException:
                _remove(tmp)
                raise
            return strategy
        raise OSError(errno.ENOTSUP, f"no configured link strategy could place {target}")


def _reflink(source: str, tmp: str, executable: bool) -> None:
    with open(source, "rb") as src:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o777 if executable else 0o666)
        try:
            fcntl.ioctl(fd, _FICLONE, src.fileno())
        finally:
            os.close(fd)


def _hardlink(source: str, tmp: str, executable: bool) -> None:
    os.link(source, tmp)


def _symlink(source: str, tmp: str, executable: bool) -> None:
    os.symlink(source, tmp)


def _copy(source: str, tmp: str, executable: bool) -> None:
    shutil.copyfile(source, tmp)  # created 0o666 minus the umask, like any new file
    if executable:
        mode = os.stat(tmp).st_mode
        os.chmod(tmp, mode | (mode & 0o444) >> 2)  # execute wherever read is allowed


_STRATEGIES = {"reflink": _reflink, "hardlink": _hardlink, "symlink": _symlink, "copy": _copy}


def _remove(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def is_protected(path: str) -> bool:
    """True for a file that shares its bytes with the cache (a symlink or a read-only link)."""
    st = os.lstat(path)
    return stat.S_ISLNK(st.st_mode) or (st.st_nlink > 1 and not st.st_mode & stat.S_IWUSR)


def make_writable_copy(path: str) -> None:
    """Replace a link by a private, writable copy of the same bytes (``data unprotect``)."""
    executable = bool(os.stat(path).st_mode & stat.S_IXUSR)
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".modelyard-{secrets.token_hex(8)}.tmp")
    try:
        _copy(os.path.realpath(path), tmp, executable)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
