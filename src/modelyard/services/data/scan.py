"""What a file or folder in the working tree holds now, without storing anything.

Unchanged files are never re-hashed (the state cache vouches for them by inode, size
and mtime), and an unchanged folder is recognised by its fingerprint (see
``dir_state``) without building its manifest: a no-op ``status`` over 70,000 files
costs one scan.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from modelyard.domain.pointer import Pointer
from modelyard.services.data.dir_state import DirState, fingerprint
from modelyard.storage.manifest import Entry, Manifest, scan_directory
from modelyard.storage.state_cache import StateCache, hash_file_cached, hash_paths_cached


def describe(path: str, state: StateCache | None, link_roots: Sequence[str] = (),
             dirs: DirState | None = None) -> Pointer:
    """The pointer ``path`` (a file or a folder) would get if it were added now."""
    if not os.path.isdir(path):
        return Pointer(hash_file_cached(path, state), "file", os.path.getsize(path), 1)
    files = scan_directory(path, link_roots=link_roots)
    key = os.path.abspath(path)
    print_ = fingerprint(files)
    known = dirs.get(key, print_) if dirs is not None else None
    if known is not None:
        return known
    digests = hash_paths_cached([f.abspath for f in files], state)
    manifest = Manifest(Entry(f.path, digests[f.abspath], f.size, f.mode) for f in files)
    pointer = Pointer(manifest.digest, "dir", manifest.total_size, manifest.file_count)
    if dirs is not None:
        dirs.put(key, print_, pointer)
    return pointer


def folder_fingerprint(path: str, link_roots: Sequence[str] = ()) -> str:
    """Take this *before* storing or after placing a folder, then record it with
    ``DirState.put``: a file touched in between gets a new mtime, so a stale
    fingerprint can only miss, never match."""
    return fingerprint(scan_directory(path, link_roots=link_roots))
