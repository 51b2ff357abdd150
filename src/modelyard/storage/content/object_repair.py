"""Putting corrupt or missing objects back from another copy: ``verify --repair --from``.

A source is the original file or folder (its files, and the folder's own manifest, are
hashed and matched against what is wanted) or another object store (a folder store or any
URL). Every object goes through ``ObjectStore.put_file``/``put_bytes``, which checks the
bytes against the digest before the object appears and replaces a damaged one by rename,
so a bad source cannot make things worse.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

from modelyard.errors import IntegrityError, ModelyardError, NotFound
from modelyard.storage.content import chunked
from modelyard.storage.content.hashing import hash_file, hash_files
from modelyard.storage.content.manifest import Entry, Manifest, scan_directory
from modelyard.storage.content.objects import ObjectStore


def restore_objects(store: ObjectStore, wanted: Iterable[str], source: str,
                    storage_options: Mapping[str, Any] | None = None) -> set[str]:
    """Write each digest of ``wanted`` found intact in ``source`` into ``store``; return
    the digests restored."""
    todo = set(wanted)
    if not todo:
        return set()
    local = os.path.expanduser(source)
    if "://" not in source and os.path.isfile(local):
        return _from_file(store, todo, local)
    restored: set[str] = set()
    if "://" in source or os.path.isdir(local):
        restored |= _from_store(store, todo, ObjectStore(source, storage_options))
    if os.path.isdir(local):
        restored |= _from_folder(store, todo - restored, local)
    return restored


def _from_store(store: ObjectStore, todo: set[str], other: ObjectStore) -> set[str]:
    restored: set[str] = set()
    for digest in sorted(other.exists_many(todo)):
        try:
            if other.is_local and chunked.list_at(other, digest) is None:
                store.put_file(other.local_path(digest), digest, rehash=True)
            else:
                with tempfile.TemporaryDirectory(prefix="modelyard-repair-") as tmp:
                    copy = os.path.join(tmp, "object")
                    other.get_file(digest, copy)  # verified on the way down
                    store.put_file(copy, digest, rehash=True)
        except (IntegrityError, NotFound):  # that copy is damaged or gone too
            continue
        restored.add(digest)
    return restored


def _from_folder(store: ObjectStore, todo: set[str], folder: str) -> set[str]:
    """The folder's files, and the manifest of the folder as registered, by digest."""
    if not todo:
        return set()
    try:
        files = scan_directory(folder)
    except ModelyardError:
        return set()
    digests = hash_files([f.abspath for f in files])
    restored: set[str] = set()
    for f, digest in zip(files, digests, strict=True):
        if digest in todo - restored and _put(store, f.abspath, digest):
            restored.add(digest)
    manifest = Manifest(Entry(f.path, d, f.size, f.mode) for f, d in zip(files, digests,
                                                                          strict=True))
    if manifest.digest in todo - restored:
        store.put_bytes(manifest.to_bytes(), rehash=True)
        restored.add(manifest.digest)
    return restored


def _from_file(store: ObjectStore, todo: set[str], path: str) -> set[str]:
    digest = hash_file(path)
    return {digest} if digest in todo and _put(store, path, digest) else set()


def _put(store: ObjectStore, path: str, digest: str) -> bool:
    try:
        store.put_file(path, digest, rehash=True)
    except IntegrityError:  # changed while being read
        return False
    return True
