"""``data diff``: data added, removed and modified between two git revisions.

Pointer files are read straight from git (``ls-tree`` + one ``cat-file --batch``), so
no checkout is needed. A folder that changed is expanded file by file when both
manifests are in the cache; otherwise the folder itself is reported as modified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard.domain import pointer as pointers
from modelyard.domain import workpaths
from modelyard.domain.pointer import Pointer
from modelyard.errors import NotFound
from modelyard.services.data import git
from modelyard.services.data.workspace import Workspace
from modelyard.storage.content.manifest import diff as manifest_diff


@dataclass
class DiffReport:
    old: str
    new: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "added": self.added,
                "removed": self.removed, "modified": self.modified}


def pointers_at(ws: Workspace, rev: str) -> dict[str, Pointer]:
    """Data path → pointer, as committed at ``rev``."""
    blobs = git.pointer_blobs(ws.root, git.resolve_commit(ws.root, rev))
    contents = git.read_blobs(ws.root, blobs.values())
    return {workpaths.check_data_path(pointers.data_path(path), f"{rev}:{path}"):
            pointers.parse(contents[blob].decode("utf-8"), f"{rev}:{path}")
            for path, blob in blobs.items()}


def _working_pointers(ws: Workspace) -> dict[str, Pointer]:
    return {t.data_path: t.pointer for t in ws.tracked()}


def diff(ws: Workspace, old: str = "HEAD", new: str | None = None) -> DiffReport:
    """Compare pointers at ``old`` with those at ``new`` (the working tree when None)."""
    a = pointers_at(ws, old)
    b = pointers_at(ws, new) if new is not None else _working_pointers(ws)
    report = DiffReport(old, new or "workspace")
    for path in sorted(a.keys() | b.keys()):
        before, after = a.get(path), b.get(path)
        if before is None:
            report.added.extend(_files(ws, path, after))
        elif after is None:
            report.removed.extend(_files(ws, path, before))
        elif before.digest != after.digest:
            _modified(ws, path, before, after, report)
    return report


def _files(ws: Workspace, path: str, pointer: Pointer | None) -> list[str]:
    """A folder's files when its manifest is cached, else the path itself."""
    if pointer is None or pointer.kind == "file":
        return [path]
    try:
        manifest = ws.cache.get_manifest(pointer.digest)
    except NotFound:
        return [path]
    return [f"{path}/{e.path}" for e in manifest.entries]


def _modified(ws: Workspace, path: str, before: Pointer, after: Pointer,
              report: DiffReport) -> None:
    if before.kind != "dir" or after.kind != "dir":
        report.modified.append(path)
        return
    try:
        changes = manifest_diff(ws.cache.get_manifest(before.digest),
                                ws.cache.get_manifest(after.digest))
    except NotFound:
        report.modified.append(path)
        return
    report.added.extend(f"{path}/{p}" for p in changes.added)
    report.removed.extend(f"{path}/{p}" for p in changes.removed)
    report.modified.extend(f"{path}/{p}" for p in changes.modified)
