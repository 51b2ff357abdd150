"""Which unreferenced objects may go: the one sweep behind ``data gc`` and registry gc.

An object is garbage when nothing kept needs it and it is older than the grace period.
Young objects stay, and so does everything they need (a young manifest's files, a young
chunk list's chunks): a writer stores files and chunks first and its reference last, so a
sweep running meanwhile must not take the parts of what it has not seen referenced yet.
Just before deleting, each object's age is read again: content stored again meanwhile
(``ObjectStore.put_file`` refreshes an old object it skips) is young again and stays.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelyard.errors import IntegrityError, InvalidInput, NotFound, StorageUnavailable
from modelyard.storage.content.chunked import chunks_in_use
from modelyard.storage.content.hashing import parse_digest
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.parallel import run_parallel

DEFAULT_GRACE_SECONDS = 3600.0
"""How old an unreferenced object must be before a gc removes it: far longer than any
upload between storing content and referencing it."""
_TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created", "time")


@dataclass(frozen=True)
class Garbage:
    digest: str
    size: int


@dataclass(frozen=True)
class Sweep:
    garbage: list[Garbage]
    """Unreferenced objects past the grace period."""
    kept: int
    """Objects kept because something kept needs them."""
    young: int
    """Unreferenced objects kept because they are younger than the grace period."""


def plan_sweep(store: ObjectStore, keep: set[str], grace_seconds: float) -> Sweep:
    """What a sweep of ``store`` would remove, keeping ``keep`` (with their chunks)."""
    if grace_seconds < 0:
        raise InvalidInput(f"the grace period cannot be negative (got {grace_seconds:g} s)")
    keep = keep | chunks_in_use(store, keep)
    candidates = sorted(d for d in store.iter_digests() if d not in keep)
    cutoff = time.time() - grace_seconds
    old: list[Garbage] = []
    young: set[str] = set()
    for digest, found in zip(candidates, object_ages(store, candidates), strict=True):
        if found is None:  # deleted meanwhile
            continue
        size, modified = found
        if grace_seconds == 0 or (modified is not None and modified <= cutoff):
            old.append(Garbage(digest, size))
        else:
            young.add(digest)
    needed_by_young = _parts(store, young) | chunks_in_use(store, young)
    garbage = [g for g in old if g.digest not in needed_by_young]
    return Sweep(garbage, len(keep), len(young) + len(old) - len(garbage))


def remove(store: ObjectStore, garbage: list[Garbage], grace_seconds: float) -> list[str]:
    """Delete ``garbage`` that is still old; returns the digests removed."""
    cutoff = time.time() - grace_seconds

    def still_old(g: Garbage) -> bool:
        found = object_ages(store, [g.digest])[0]
        if found is None or (grace_seconds and (found[1] is None or found[1] > cutoff)):
            return False
        return store.delete(g.digest)

    done = run_parallel(still_old, garbage, 1 if store.is_local else None)
    return [g.digest for g, ok in zip(garbage, done, strict=True) if ok]


def _parts(store: ObjectStore, digests: Iterable[str]) -> set[str]:
    """The files of those objects that are manifests (others are skipped)."""
    parts: set[str] = set()
    for digest in digests:
        with suppress(NotFound, IntegrityError, InvalidInput):
            parts.update(e.digest for e in store.get_manifest(digest).entries)
    return parts


def object_ages(store: ObjectStore, digests: list[str]
                ) -> list[tuple[int, float | None] | None]:
    """(size, modification time) of each object; None for one that is gone."""
    if store.is_local:
        return [_age_local(store, d) for d in digests]
    return run_parallel(lambda d: _age_remote(store, d), digests, None)


def _age_local(store: ObjectStore, digest: str) -> tuple[int, float | None] | None:
    try:
        st = os.stat(store.local_path(digest))
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime


def _age_remote(store: ObjectStore, digest: str) -> tuple[int, float | None] | None:
    hex_digest = parse_digest(digest)
    path = f"{store.root}/{hex_digest[:2]}/{hex_digest[2:]}"  # the store's documented layout
    try:
        info = store.fs.info(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageUnavailable(f"cannot read {store.url}: {exc}",
                                 hint="check the URL, network and credentials") from exc
    return int(info.get("size") or 0), _modified(info)


def _modified(info: dict[str, Any]) -> float | None:
    """A listing's modification time as a POSIX timestamp; None if it has none (such
    objects count as young: without an age, only ``grace=0`` removes them)."""
    for key in _TIME_KEYS:
        value = info.get(key)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                continue
    return None
