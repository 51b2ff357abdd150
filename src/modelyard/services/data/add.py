"""``data add``: store a file or folder in the cache, write ``PATH.yard``, git-ignore ``PATH``.

A no-op re-add costs a directory scan plus a few batched state-cache queries: unchanged
files are never re-hashed and objects already cached are never copied again. A changed
folder is scanned and hashed once: the snapshot that shows it changed is what is stored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.domain import pointer as pointers
from modelyard.domain.pointer import Pointer
from modelyard.errors import IntegrityError, InvalidInput, NotFound
from modelyard.services.data.progress import NULL_METER, Meter
from modelyard.services.data.scan import manifest_of, snapshot
from modelyard.services.data.workspace import Tracked, Workspace, write_atomic
from modelyard.storage.content.manifest import Manifest
from modelyard.storage.content.objects import StoredTree


@dataclass(frozen=True)
class Added:
    tracked: Tracked
    changed: bool
    """False when the pointer already recorded this content."""

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.tracked.data_path, "pointer": self.tracked.pointer_path,
                "changed": self.changed, **self.tracked.pointer.to_dict()}


def add(ws: Workspace, paths: Sequence[str | os.PathLike[str]], *, meter: Meter = NULL_METER,
        workers: int | None = None) -> list[Added]:
    """Track each path (file or folder); re-adding unchanged data changes nothing."""
    if not paths:
        raise InvalidInput("nothing to add: give one or more files or folders")
    rels = [_checked(ws, p) for p in paths]
    return [_add_one(ws, rel, meter, workers) for rel in rels]


def _checked(ws: Workspace, path: str | os.PathLike[str]) -> str:
    rel = ws.relpath(path)
    if pointers.is_pointer_path(rel):
        rel = pointers.data_path(rel)
    full = ws.target(rel, os.fspath(path))  # no symlinked folder leading out of the tree
    if not os.path.exists(full):
        raise InvalidInput(f"{rel} does not exist", path=rel)
    if os.path.islink(full) and not _inside(os.path.realpath(full), ws.link_roots):
        raise InvalidInput(f"{rel} is a symlink; add the folder or file it points to", path=rel)
    parts = rel.split("/")
    for i in range(1, len(parts)):
        owner = "/".join(parts[:i])
        if os.path.isfile(ws.abspath(owner + pointers.SUFFIX)):
            raise InvalidInput(f"{rel} is inside {owner}, which is already tracked",
                               hint=f"run 'modelyard data add {owner}' to update it", path=rel)
    return rel


def _add_one(ws: Workspace, rel: str, meter: Meter, workers: int | None) -> Added:
    full = ws.abspath(rel)
    tracked = _tracked(ws, rel)
    now = snapshot(full, ws.state, ws.link_roots, ws.dirs, workers)
    if tracked is not None and now.pointer == tracked.pointer and ws.cache.exists(
            now.pointer.digest):  # a cached manifest implies its files: they are stored first
        _ignore_in_git(ws, rel)
        return Added(tracked, False)
    meter.start(f"adding {rel}", None, None)
    if now.files is None:
        stored = _add_file(ws, full, now.pointer.digest, meter, workers)
    else:
        manifest = now.manifest or manifest_of(now.files, ws.state, workers)
        stored = ws.cache.put_listed(manifest, now.files, meter.advance, workers,
                                     stored=_stored_before(ws, tracked))
    pointer = Pointer(stored.digest, stored.kind, stored.size, stored.file_count)
    pointer_path = rel + pointers.SUFFIX
    text = pointers.render(pointer)
    full_pointer = ws.abspath(pointer_path)
    try:
        with open(full_pointer, encoding="utf-8") as f:
            changed = f.read() != text
    except FileNotFoundError:
        changed = True
    if changed:
        write_atomic(full_pointer, text)
    _ignore_in_git(ws, rel)
    return Added(Tracked(pointer_path, rel, pointer), changed)


def _add_file(ws: Workspace, full: str, digest: str, meter: Meter,
              workers: int | None) -> StoredTree:
    """Store one file; one the cache lacked was verified as it landed, so ``status`` is
    told its digest and need not hash the object again (an existing one it may not)."""
    new_object = None if ws.cache.exists(digest) else digest
    stored = ws.cache.put_tree(full, progress=meter.advance, workers=workers,
                               cache=ws.state, link_roots=ws.link_roots)
    if stored.digest == new_object:
        landed = ws.cache.local_path(new_object)
        ws.state.put_many([(landed, os.stat(landed), new_object)])
    return stored


def _stored_before(ws: Workspace, tracked: Tracked | None) -> set[str]:
    """The files of the folder's previous version, when the cache holds its manifest: a
    manifest is stored after its files (and gc keeps a live manifest's files), so a
    re-add after one change looks up one object, not 70,000 (as the no-op re-add trusts
    a cached manifest)."""
    if tracked is None or tracked.pointer.kind != "dir":
        return set()
    try:
        return Manifest.digests_in(ws.cache.get_bytes(tracked.pointer.digest))
    except (IntegrityError, NotFound):  # damaged or gone: look every file up
        return set()


def _tracked(ws: Workspace, rel: str) -> Tracked | None:
    pointer_path = rel + pointers.SUFFIX
    return ws.read_pointer(pointer_path) if os.path.isfile(ws.abspath(pointer_path)) else None


def _ignore_in_git(ws: Workspace, rel: str) -> None:
    """Add ``/NAME`` to the ``.gitignore`` next to the data, once."""
    parent, _, name = rel.rpartition("/")
    ignore_file = os.path.join(ws.abspath(parent) if parent else ws.root, ".gitignore")
    entry = "/" + name
    try:
        with open(ignore_file, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    if entry in text.splitlines():
        return
    separator = "" if not text or text.endswith("\n") else "\n"
    write_atomic(ignore_file, f"{text}{separator}{entry}\n")


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)
