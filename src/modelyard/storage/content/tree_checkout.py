"""Writing a stored file or directory back to disk, all or nothing.

Every destination is checked before any byte moves (no escape from the target through
``..`` or a symlinked folder, no file/folder clash); a directory's files are downloaded
and verified in a staging folder inside the target, then renamed into place, so a
failure — a corrupted object, a missing one, Ctrl-C — leaves nothing partial behind.
"""

from __future__ import annotations

import os
import secrets
import shutil
from contextlib import suppress
from typing import Protocol

from modelyard.errors import InvalidInput
from modelyard.storage.content.hashing import Progress
from modelyard.storage.content.manifest import Entry, Manifest, check_path
from modelyard.storage.content.objects import ObjectKind, is_inside
from modelyard.storage.parallel import run_parallel


class TreeSource(Protocol):
    """Where verified content comes from: an ``ObjectStore``, or a server over HTTP."""

    def get_file(self, digest: str, dest: str | os.PathLike[str],
                 progress: Progress | None = None) -> None: ...

    def get_manifest(self, digest: str) -> Manifest: ...

    def fetch_entry(self, entry: Entry, dest: str, progress: Progress | None = None) -> None: ...


def materialize(
    store: TreeSource,
    digest: str,
    kind: ObjectKind,
    dest_dir: str | os.PathLike[str],
    filename: str | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> str:
    """Write an object under ``dest_dir`` and return its path.

    A file lands at ``dest_dir/filename``; a directory's files land in ``dest_dir`` (or
    ``dest_dir/filename``). Files already there with other paths are left alone.
    """
    base = os.path.abspath(dest_dir)
    if kind == "file":
        if filename is None:
            raise InvalidInput("a file object needs a filename to be materialized")
        target = os.path.join(base, *check_path(filename).split("/"))
        store.get_file(digest, target, progress)
        return target
    if kind != "dir":
        raise InvalidInput(f"unknown object kind {kind!r}; expected 'file' or 'dir'")
    manifest = store.get_manifest(digest)
    target = base if filename is None else os.path.join(base, *check_path(filename).split("/"))
    created = not os.path.exists(target)
    os.makedirs(target, exist_ok=True)
    try:
        _materialize_tree(store, manifest, target, progress, workers)
    except BaseException:
        if created:
            with suppress(OSError):
                os.rmdir(target)
        raise
    return target


def _materialize_tree(
    store: TreeSource, manifest: Manifest, target: str, progress: Progress | None,
    workers: int | None,
) -> None:
    real = os.path.realpath(target)
    finals = _checked_destinations(manifest, real)
    staging = os.path.join(real, f".modelyard-staging-{secrets.token_hex(8)}")
    os.mkdir(staging)
    try:
        for folder in _folders(manifest):
            os.mkdir(os.path.join(staging, *folder.split("/")))
        run_parallel(
            lambda entry: store.fetch_entry(
                entry, os.path.join(staging, *entry.path.split("/")), progress),
            manifest.entries, workers,
        )
        for entry, final in zip(manifest.entries, finals, strict=True):
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(os.path.join(staging, *entry.path.split("/")), final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _folders(manifest: Manifest) -> list[str]:
    """Every folder the manifest's files live in, parents before children."""
    folders: set[str] = set()
    for entry in manifest.entries:
        segments = entry.path.split("/")[:-1]
        folders.update("/".join(segments[: i + 1]) for i in range(len(segments)))
    return sorted(folders)


def _checked_destinations(manifest: Manifest, real_root: str) -> list[str]:
    """Final paths for every entry; InvalidInput if one would escape or clash with a file."""
    for folder in _folders(manifest):
        path = os.path.join(real_root, *folder.split("/"))
        resolved = os.path.realpath(path)
        if not is_inside(resolved, real_root):
            raise InvalidInput(
                f"manifest path {folder!r} would be written outside {real_root}"
                f" (through {resolved})",
                path=folder,
            )
        if os.path.lexists(path) and not os.path.isdir(path):
            raise InvalidInput(f"cannot write into {folder!r}: {path} is not a folder", path=folder)
    finals = []
    for entry in manifest.entries:
        final = os.path.join(real_root, *entry.path.split("/"))
        if os.path.isdir(final) and not os.path.islink(final):
            raise InvalidInput(f"cannot write {entry.path!r}: {final} is a folder", path=entry.path)
        finals.append(final)
    return finals
