"""``data gc``: delete cache (or remote) objects nothing references any more, safely.

- What is kept: by default everything git can still reach, the index and the working tree
  (``references.Scope``); narrower scopes must be asked for. A folder's files are found
  through its manifest; a referenced manifest that cannot be read makes a remote gc stop
  rather than guess.
- No object younger than ``grace`` (default one hour) is deleted, so an ``add`` or ``push``
  running at the same time, whose pointer is not written yet, is not raced.
- The caller sees the plan before anything goes: ``confirm(plan)`` decides.
- A remote is refused if it overlaps a registry store, and needs ``only_this_clone``: other
  clones may have pushed data for branches and commits this clone has never seen.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from modelyard.errors import InvalidInput, ModelyardError, NotFound, StorageUnavailable
from modelyard.services.data.references import References, Scope, referenced
from modelyard.services.data.registry_guard import refuse_registry_store
from modelyard.services.data.remotes import get_remote, open_remote
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.chunk_reuse import LocalLists
from modelyard.storage.content.chunked import chunks_in_use
from modelyard.storage.content.hashing import parse_digest
from modelyard.storage.content.manifest import Entry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.parallel import run_parallel

DEFAULT_GRACE = timedelta(hours=1)
_TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created", "time")


@dataclass(frozen=True)
class Garbage:
    digest: str
    size: int


@dataclass(frozen=True)
class GcReport:
    store: str
    scope: list[str]
    garbage: list[Garbage]
    """Unreferenced objects past the grace period: removed, or that would be."""
    kept: int
    young: int
    """Unreferenced objects kept because they are younger than the grace period."""
    dry_run: bool
    declined: bool = False

    @property
    def removed(self) -> list[str]:
        """Digests removed (a dry run: that would be removed; declined: none)."""
        return [] if self.declined else [g.digest for g in self.garbage]

    @property
    def removed_count(self) -> int:
        return len(self.removed)

    @property
    def removed_bytes(self) -> int:
        return 0 if self.declined else sum(g.size for g in self.garbage)

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "scope": self.scope, "removed": self.removed,
                "removed_count": self.removed_count, "removed_bytes": self.removed_bytes,
                "objects": [{"digest": g.digest, "size": g.size} for g in self.garbage],
                "kept": self.kept, "young": self.young, "dry_run": self.dry_run,
                "declined": self.declined}


def gc(ws: Workspace, *, scope: Scope | None = None, remote: str | None = None,
       only_this_clone: bool = False, dry_run: bool = False,
       grace: timedelta | float = DEFAULT_GRACE,
       confirm: Callable[[GcReport], bool] | None = None,
       registry_stores: Iterable[str] = ()) -> GcReport:
    """Remove unreferenced objects from the cache, or from ``remote`` when given.

    ``confirm`` sees the plan and returns whether to go ahead (None: go ahead);
    ``registry_stores``: registry store URLs this machine uses, never to be collected.
    """
    scope = scope or Scope()
    grace_seconds = grace.total_seconds() if isinstance(grace, timedelta) else float(grace)
    if grace_seconds < 0:
        raise InvalidInput(f"the grace period cannot be negative (got {grace_seconds:g} s)")
    store = ws.cache if remote is None else open_remote(ws, get_remote(ws, remote))
    if remote is not None:
        refuse_registry_store(store, registry_stores)
        if not (only_this_clone or dry_run):
            raise InvalidInput(
                f"refusing to garbage-collect remote {remote!r} from this clone's references "
                "alone: other clones may have pushed data for branches or commits this clone "
                "cannot see, and it would be deleted",
                hint="preview with --dry-run; if only this clone uses the remote, pass "
                "--only-this-clone (Python: only_this_clone=True)", remote=remote)
    keep = _kept(ws, store, referenced(ws, scope))
    keep |= chunks_in_use(store, keep)
    candidates = sorted(d for d in store.iter_digests() if d not in keep)
    cutoff = time.time() - grace_seconds
    garbage: list[Garbage] = []
    young = 0
    for digest, found in zip(candidates, _stat_many(store, candidates), strict=True):
        if found is None:  # deleted meanwhile
            continue
        size, modified = found
        if grace_seconds == 0 or (modified is not None and modified <= cutoff):
            garbage.append(Garbage(digest, size))
        else:
            young += 1
    plan = GcReport("cache" if remote is None else store.url, scope.describe(), garbage,
                    len(keep), young, dry_run)
    if dry_run or not garbage:
        return plan
    if confirm is not None and not confirm(plan):
        return replace(plan, declined=True)
    run_parallel(store.delete, plan.removed, 1 if store.is_local else None)
    if remote is not None:
        ws.remote_index.forget(store.url, plan.removed)
    else:
        LocalLists(store).forget(plan.removed)
    return plan


def _kept(ws: Workspace, store: ObjectStore, refs: References) -> set[str]:
    keep = set(refs.loose)
    for p in refs.pointers:
        keep.add(p.digest)
        if p.kind == "dir":
            keep.update(e.digest for e in _manifest_entries(ws, store, p.digest))
    for digest in refs.loose:  # an unreadable pointer might name a folder: keep its files too
        try:
            keep.update(e.digest for e in _manifest_entries(ws, store, digest))
        except ModelyardError:
            continue
    return keep


def _manifest_entries(ws: Workspace, store: ObjectStore, digest: str) -> list[Entry]:
    for source in (ws.cache, store):
        try:
            return list(source.get_manifest(digest).entries)
        except NotFound:
            continue
    if store is ws.cache:
        return []  # without its manifest a folder cannot be checked out from this cache
    raise NotFound(f"manifest {digest} is in neither the cache nor {store.url}; "
                   "refusing to guess which of its files are still needed",
                   hint="run 'modelyard data fetch' first", digest=digest)


def _stat_many(store: ObjectStore, digests: list[str]) -> list[tuple[int, float | None] | None]:
    """(size, modification time) of each object; None for one that is gone."""
    if store.is_local:
        return [_stat_local(store, d) for d in digests]
    return run_parallel(lambda d: _stat_remote(store, d), digests, None)


def _stat_local(store: ObjectStore, digest: str) -> tuple[int, float | None] | None:
    try:
        st = os.stat(store.local_path(digest))
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime


def _stat_remote(store: ObjectStore, digest: str) -> tuple[int, float | None] | None:
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
