"""What a file or folder in the working tree holds now, without storing anything.

Unchanged files are never re-hashed (the state cache vouches for them by inode, size
and mtime), and an unchanged folder is recognised by its fingerprint (see
``dir_state``) without building its manifest: a no-op ``status`` over 70,000 files
costs one scan.

Anything named ``.git`` or ``.modelyard`` (or a variant, see ``domain.workpaths``)
inside a tracked folder is not part of the data: it is skipped here, by ``add`` and by
checkout alike, so a nested repository is never stored, replaced or deleted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from modelyard.domain import workpaths
from modelyard.domain.pointer import Pointer
from modelyard.errors import InvalidInput
from modelyard.services.data.dir_state import DirState, fingerprint
from modelyard.storage.content.manifest import Manifest, ScannedFile, scan_directory
from modelyard.storage.index.state_cache import StateCache, hash_file_cached, hash_scanned


@dataclass(frozen=True)
class Snapshot:
    """A file or folder as it is now: its pointer, and for a folder what storing it needs,
    so ``add`` scans and hashes it once, not once to compare and again to store."""

    pointer: Pointer
    files: list[ScannedFile] | None = None  # a folder's files, as scanned
    manifest: Manifest | None = None  # None when the fingerprint vouched for the pointer


def describe(path: str, state: StateCache | None, link_roots: Sequence[str] = (),
             dirs: DirState | None = None) -> Pointer:
    """The pointer ``path`` (a file or a folder) would get if it were added now."""
    return snapshot(path, state, link_roots, dirs).pointer


def snapshot(path: str, state: StateCache | None, link_roots: Sequence[str] = (),
             dirs: DirState | None = None, workers: int | None = None) -> Snapshot:
    """``describe`` with what it saw on the way (see ``Snapshot``); ``workers`` hash."""
    if not os.path.isdir(path):
        return Snapshot(Pointer(hash_file_cached(path, state), "file", os.path.getsize(path), 1))
    files = scan_directory(path, skip_reserved, link_roots)
    key = os.path.abspath(path)
    print_ = fingerprint(files)
    known = dirs.get(key, print_) if dirs is not None else None
    if known is not None:
        return Snapshot(known, files)
    manifest = manifest_of(files, state, workers)
    pointer = Pointer(manifest.digest, "dir", manifest.total_size, manifest.file_count)
    if dirs is not None:
        dirs.put(key, print_, pointer)
    return Snapshot(pointer, files, manifest)


def folder_manifest(path: str, state: StateCache | None,
                    link_roots: Sequence[str] = ()) -> Manifest:
    """The manifest folder ``path`` would get if it were added now (nothing is stored)."""
    return manifest_of(scan_directory(path, skip_reserved, link_roots), state)


def manifest_of(files: Sequence[ScannedFile], state: StateCache | None,
                workers: int | None = None) -> Manifest:
    """The manifest of scanned ``files``, each hashed unless the state cache knows it."""
    return Manifest.of_scan(files, hash_scanned(files, state, workers))


def folder_fingerprint(path: str, link_roots: Sequence[str] = ()) -> str:
    """Take this *before* storing or after placing a folder, then record it with
    ``DirState.put``: a file touched in between gets a new mtime, so a stale
    fingerprint can only miss, never match."""
    return fingerprint(scan_directory(path, skip_reserved, link_roots))


def skip_reserved(rel: str, is_dir: bool) -> bool:
    """The ``ignore`` of every data scan: leave out ``.git``/``.modelyard`` and variants."""
    return workpaths.is_reserved(rel.rsplit("/", 1)[-1])


def scan_output(path: str, source: str, link_roots: Sequence[str] = (), *,
                whole: bool = False) -> list[ScannedFile]:
    """The files of a checked-out folder that checkout may replace or delete.

    Refuses (InvalidInput naming ``source``) a file reached through a symlinked folder,
    which could lead a delete into the cache or another output; with ``whole`` (the
    folder itself is to be removed) also a folder holding ``.git``/``.modelyard``.
    """
    reserved: list[str] = []

    def ignore(rel: str, is_dir: bool) -> bool:
        if skip_reserved(rel, is_dir):
            reserved.append(rel)
            return True
        return False

    files = scan_directory(path, ignore, link_roots)
    if whole and reserved:
        raise InvalidInput(
            f"{source}: {path} holds {reserved[0]}; checkout never deletes it",
            hint=f"move {os.path.join(path, reserved[0])} away, or delete {source}",
            path=source)
    real = os.path.realpath(path)
    for f in files:
        if f.abspath != os.path.join(real, *f.path.split("/")):
            raise InvalidInput(
                f"{source}: {os.path.join(path, *f.path.split('/'))} is reached through a "
                "symlinked folder; checkout does not write or delete through folder links",
                hint="replace the symlinked folder by a real one", path=source)
    return files
