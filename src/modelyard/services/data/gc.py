"""``data gc``: delete cache (or remote) objects that no pointer references any more.

What is kept: the objects of every pointer in the working tree, plus, with
``all_commits``, those of every pointer in every commit of every branch and tag. A
folder's files are found through its manifest; a referenced manifest that cannot be
read makes gc stop rather than guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.domain import pointer as pointers
from modelyard.errors import NotFound
from modelyard.services.data import git
from modelyard.services.data.remotes import get_remote, open_remote
from modelyard.services.data.workspace import Workspace
from modelyard.storage.manifest import Entry
from modelyard.storage.objects import ObjectStore


@dataclass(frozen=True)
class GcReport:
    store: str
    removed: list[str]
    kept: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "removed": self.removed, "removed_count": len(self.removed),
                "kept": self.kept, "dry_run": self.dry_run}


def gc(ws: Workspace, *, all_commits: bool = False, remote: str | None = None,
       dry_run: bool = False) -> GcReport:
    """Remove unreferenced objects from the cache, or from ``remote`` when given."""
    store = ws.cache if remote is None else open_remote(ws, get_remote(ws, remote))
    keep = _referenced(ws, store, all_commits)
    removed = sorted(d for d in store.iter_digests() if d not in keep)
    if not dry_run:
        for digest in removed:
            store.delete(digest)
        if remote is not None:
            ws.remote_index.forget(store.url, removed)
    return GcReport(store.url if remote else "cache", removed, len(keep), dry_run)


def _referenced(ws: Workspace, store: ObjectStore, all_commits: bool) -> set[str]:
    found = {t.pointer for t in ws.tracked()}
    if all_commits:
        blobs: set[str] = set()
        for commit in git.all_commits(ws.root):
            blobs.update(git.pointer_blobs(ws.root, commit).values())
        for blob, content in git.read_blobs(ws.root, blobs).items():
            found.add(pointers.parse(content.decode("utf-8"), f"git blob {blob}"))
    keep: set[str] = set()
    for p in found:
        keep.add(p.digest)
        if p.kind == "dir":
            keep.update(e.digest for e in _manifest_entries(ws, store, p.digest))
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
