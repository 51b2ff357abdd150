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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from modelyard.errors import InvalidInput, ModelyardError, NotFound
from modelyard.services.data.references import References, Scope, referenced
from modelyard.services.data.registry_guard import refuse_registry_store
from modelyard.services.data.remotes import get_remote, open_remote
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.chunk_reuse import LocalLists
from modelyard.storage.content.manifest import Entry
from modelyard.storage.content.objects import ObjectStore
from modelyard.storage.content.sweep import DEFAULT_GRACE_SECONDS, Garbage, plan_sweep, remove

DEFAULT_GRACE = timedelta(seconds=DEFAULT_GRACE_SECONDS)


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
    sweep = plan_sweep(store, _kept(ws, store, referenced(ws, scope)), grace_seconds)
    plan = GcReport("cache" if remote is None else store.url, scope.describe(), sweep.garbage,
                    sweep.kept, sweep.young, dry_run)
    if dry_run or not sweep.garbage:
        return plan
    if confirm is not None and not confirm(plan):
        return replace(plan, declined=True)
    removed = remove(store, sweep.garbage, grace_seconds)
    if remote is not None:
        ws.remote_index.forget(store.url, removed)
    else:
        LocalLists(store).forget(removed)
    return replace(plan, garbage=[g for g in sweep.garbage if g.digest in set(removed)])


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
