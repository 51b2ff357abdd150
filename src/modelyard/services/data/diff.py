"""``data diff``: data added, removed and modified between two git revisions.

Pointer files are read straight from git (``ls-tree`` + one ``cat-file --batch``), so
no checkout is needed. Against the working tree (no ``new``), the data on disk counts, as
``data status`` sees it: an edit not yet added is modified, deleted data is removed. A
folder that changed is expanded file by file when both manifests are known (cached, or
scanned from the working tree); otherwise the folder itself is reported as modified.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from modelyard.domain import pointer as pointers
from modelyard.domain import workpaths
from modelyard.domain.codec import Record
from modelyard.domain.pointer import Pointer
from modelyard.errors import NotFound
from modelyard.services.data import git
from modelyard.services.data.scan import describe, folder_manifest
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.manifest import Manifest
from modelyard.storage.content.manifest import diff as manifest_diff


@dataclass
class DiffReport(Record):
    old: str
    new: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)


def pointers_at(ws: Workspace, rev: str) -> dict[str, Pointer]:
    """Data path → pointer, as committed at ``rev``."""
    blobs = git.pointer_blobs(ws.root, git.resolve_commit(ws.root, rev))
    contents = git.read_blobs(ws.root, blobs.values())
    return {workpaths.check_data_path(pointers.data_path(path), f"{rev}:{path}"):
            pointers.parse(contents[blob].decode("utf-8"), f"{rev}:{path}")
            for path, blob in blobs.items()}


def _working_tree(ws: Workspace, on_disk: dict[str, Manifest]) -> dict[str, Pointer]:
    """Data path → what its data is now (missing data left out); a folder edited since
    ``data add`` has its manifest put in ``on_disk``, as it is not in the cache."""
    found = {}
    for t in ws.tracked():
        full = ws.target(t.data_path, t.pointer_path)
        if not os.path.lexists(full):
            continue
        now = describe(full, ws.state, ws.link_roots, ws.dirs)
        if now.digest != t.pointer.digest and now.kind == "dir":
            on_disk[now.digest] = folder_manifest(full, ws.state, ws.link_roots)
        found[t.data_path] = now
    return found


def diff(ws: Workspace, old: str = "HEAD", new: str | None = None) -> DiffReport:
    """Compare pointers at ``old`` with those at ``new`` (the working tree when None)."""
    on_disk: dict[str, Manifest] = {}
    a = pointers_at(ws, old)
    b = pointers_at(ws, new) if new is not None else _working_tree(ws, on_disk)
    report = DiffReport(old, new or "workspace")
    for path in sorted(a.keys() | b.keys()):
        before, after = a.get(path), b.get(path)
        if before is None:
            report.added.extend(_files(ws, path, after, on_disk))
        elif after is None:
            report.removed.extend(_files(ws, path, before, on_disk))
        elif before.digest != after.digest:
            _modified(ws, path, before, after, report, on_disk)
    return report


def _manifest(ws: Workspace, digest: str, on_disk: dict[str, Manifest]) -> Manifest:
    return on_disk[digest] if digest in on_disk else ws.cache.get_manifest(digest)


def _files(ws: Workspace, path: str, pointer: Pointer | None,
           on_disk: dict[str, Manifest]) -> list[str]:
    """A folder's files when its manifest is known, else the path itself."""
    if pointer is None or pointer.kind == "file":
        return [path]
    try:
        manifest = _manifest(ws, pointer.digest, on_disk)
    except NotFound:
        return [path]
    return [f"{path}/{e.path}" for e in manifest.entries]


def _modified(ws: Workspace, path: str, before: Pointer, after: Pointer,
              report: DiffReport, on_disk: dict[str, Manifest]) -> None:
    if before.kind != "dir" or after.kind != "dir":
        report.modified.append(path)
        return
    try:
        changes = manifest_diff(_manifest(ws, before.digest, on_disk),
                                _manifest(ws, after.digest, on_disk))
    except NotFound:
        report.modified.append(path)
        return
    report.added.extend(f"{path}/{p}" for p in changes.added)
    report.removed.extend(f"{path}/{p}" for p in changes.removed)
    report.modified.extend(f"{path}/{p}" for p in changes.modified)
