"""Which cache objects no longer hash to their digest, without re-reading intact ones.

A cache object can change after it was stored: a file checked out as a hardlink (when
``cache.link`` asks for them) shares its inode with the object, so ``>`` on it rewrites
the object. Every check goes through the state cache keyed on the object's own path,
inode, size and mtime: an object is hashed once, and again only when its stat changes,
which is exactly what an in-place write does. ``status`` reports the damage and
``fetch``/``pull`` replace the damaged objects with verified copies from the remote.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from modelyard.errors import IntegrityError, InvalidInput
from modelyard.services.data.workspace import Tracked, Workspace
from modelyard.storage.state_cache import hash_paths_cached


def damaged(ws: Workspace, digests: Iterable[str]) -> set[str]:
    """The subset of ``digests`` present in the cache whose bytes no longer match."""
    present = ws.cache.exists_many(digests)
    paths = {ws.cache.local_path(d): d for d in present}
    try:
        actual = hash_paths_cached(list(paths), ws.state)
    except InvalidInput:  # an object vanished meanwhile (gc): check the rest one by one
        actual = {}
        for path in paths:
            try:
                actual.update(hash_paths_cached([path], ws.state))
            except InvalidInput:
                continue
    return {d for path, d in paths.items() if path in actual and actual[path] != d}


def damaged_outputs(ws: Workspace, tracked: Sequence[Tracked]) -> list[str]:
    """Data paths whose cached content is damaged: a file's object, or a folder's
    manifest or any of the files it lists. Content not cached at all is not counted
    (``status`` calls that ``not_in_cache``)."""
    needs: dict[str, set[str]] = {}
    bad_manifest: set[str] = set()
    cached = ws.cache.exists_many(t.pointer.digest for t in tracked)
    for item in tracked:
        digest = item.pointer.digest
        if digest not in cached:
            continue
        needs[item.data_path] = {digest}
        if item.pointer.kind == "dir":
            try:
                manifest = ws.cache.get_manifest(digest)
            except IntegrityError:
                bad_manifest.add(item.data_path)
                continue
            except InvalidInput:
                continue  # intact bytes that are no manifest: checkout says so
            needs[item.data_path].update(e.digest for e in manifest.entries)
    bad = damaged(ws, {d for ds in needs.values() for d in ds})
    return sorted(path for path, ds in needs.items() if path in bad_manifest or ds & bad)
