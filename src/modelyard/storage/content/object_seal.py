"""A stat-only check that a local object has not been written to since it was stored.

Re-storing content that is already present must notice a damaged object (finding 4 of
issue 9) without re-hashing every byte each time: re-registering a 1 GiB model would
cost a second full read. So each local object gets a *seal* when it is stored: its
modification time keeps the second it was written, and its nanoseconds are derived from
its digest. Any later write in place (``>``, an editor, a flipped byte through ``r+b``)
sets the modification time to the clock and breaks the seal (a 1 in 10^9 chance of
matching), and only then is the object re-hashed. What a seal cannot see (a disk that
rots under an intact inode, a deliberate ``touch -d``) is what ``modelyard verify`` is for.
"""

from __future__ import annotations

import os
import time
from contextlib import suppress

from modelyard.storage.content.hashing import parse_digest

_NS = 1_000_000_000


def _stamp(digest: str, seconds: int) -> int:
    return seconds * _NS + int(parse_digest(digest)[:15], 16) % _NS


def seal(path: str, digest: str, at: float | None = None) -> None:
    """Stamp a freshly written object (before it is renamed into place), as written now
    or at ``at`` (a POSIX time)."""
    now = time.time_ns() if at is None else int(at * _NS)
    os.utime(path, ns=(now, _stamp(digest, now // _NS)))


def is_sealed(st: os.stat_result, digest: str) -> bool:
    """Whether the object's modification time is still the stamp it was stored with."""
    return st.st_mtime_ns == _stamp(digest, st.st_mtime_ns // _NS)


def reseal(path: str, digest: str, st: os.stat_result) -> None:
    """Seal an object just verified by hashing (an old store, or one touched harmlessly);
    a store owned by someone else stays unsealed and is simply hashed again next time."""
    with suppress(OSError):
        os.utime(path, ns=(st.st_atime_ns, _stamp(digest, st.st_mtime_ns // _NS)))


REFRESH_AFTER = 600.0  # seconds: far inside any gc grace period (default one hour)


def refresh(path: str, digest: str, st: os.stat_result) -> None:
    """Stamp an old object that is being stored again as new (sealed still), so a gc
    sweeping meanwhile sees it young and keeps it for the reference about to be made.
    Recently stamped objects are left alone: re-adding a tree costs no extra writes."""
    if st.st_mtime < time.time() - REFRESH_AFTER:
        with suppress(OSError):
            seal(path, digest)
